# %post and %postun of dynamo-client: refresh the linker cache.
/sbin/ldconfig
