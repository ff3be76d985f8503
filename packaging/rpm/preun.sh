# %preun of the dynamo package: stop the nodes on erase (not on upgrade).
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
  systemctl stop 'dynamod.service' 'dynamod@*.service' >/dev/null 2>&1 || :
fi
exit 0
