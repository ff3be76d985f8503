# %post of the dynamo package: the data folder.
if [ ! -d /var/lib/dynamo ]; then
  install -d -o dynamo -g dynamo -m 0750 /var/lib/dynamo
fi
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null 2>&1 || :
fi
exit 0
