# %pre of the dynamo package: the system user.
getent group dynamo >/dev/null || groupadd -r dynamo
getent passwd dynamo >/dev/null || \
  useradd -r -g dynamo -d /var/lib/dynamo -M -s /sbin/nologin -c "dynamo key-value store" dynamo
exit 0
