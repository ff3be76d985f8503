# %post of the dynamo package: the data folder and the node's CURVE keys.
if [ ! -d /var/lib/dynamo ]; then
  install -d -o dynamo -g dynamo -m 0750 /var/lib/dynamo
fi
# Made only when missing (never replaced); see dynamo-setup-keys.
/usr/lib/dynamo/dynamo-setup-keys /etc/dynamo dynamo || :
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null 2>&1 || :
fi
exit 0
