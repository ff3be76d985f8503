# %postun of the dynamo package. The data folder and the user are kept:
# RPM has no purge, so deleting data is left to the operator.
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null 2>&1 || :
fi
exit 0
