# Relative paths in the configuration (conf/README "Paths"): every path
# setting is resolved against the directory of the configuration file each
# time the file is loaded, so a start and a reload of the same file agree,
# and the master's working directory plays no part. A reload that makes
# data.experiments_dir and logging.api_file relative moves uploads and the
# operational log beside the config file; one naming a directory the pool
# cannot make fails uploads with 500 and a log line that names it; a reload
# back restores them.

t37_k=t37-$(openssl rand -hex 12)
t37_dev=$FETCHML_VAR/dev # the directory of the configuration file
t37_cwd=$(readlink "/proc/$(cat "$FETCHML_VAR/run/fcgi.pid")/cwd")
# What the pool (and the dropped master, for the log) must find ready there, as on a start.
mkdir -p "$t37_dev/exp37"
chmod 700 "$t37_dev/exp37"
: >"$t37_dev/api37.log"
chmod 600 "$t37_dev/api37.log"
if [ "$(id -u)" = 0 ]; then
    chown "$(fm_pool_user):" "$t37_dev/exp37" "$t37_dev/api37.log"
fi

check "reload with data.experiments_dir: exp37 and logging.api_file: api37.log (relative)" \
    exp_user_config e37 "$t37_k" data.experiments_dir=exp37 logging.api_file=api37.log
as "$t37_k" PUT /v1/experiments/rel/files/a.txt --data-binary hello
check "an upload lands beside the config file, in $t37_dev/exp37 (got $STATUS)" \
    bash -c "[ $STATUS = 201 ] && [ \"\$(cat '$t37_dev/exp37/e37/rel/a.txt')\" = hello ]"
check "... not under the master's working directory ($t37_cwd)" test ! -e "$t37_cwd/exp37"
as "t37-not-a-key-$(openssl rand -hex 8)" GET /v1/whoami
check "the operational log is $t37_dev/api37.log: its authentication failure is there" \
    wait_for 5 grep -q "authentication failed.*trace_id=$TRACE" "$t37_dev/api37.log"
# A relative directory the pool cannot make: the same rule, and the log says where it looked.
check "reload with data.experiments_dir: missing37/sub (its parent does not exist)" \
    exp_user_config e37 "$t37_k" data.experiments_dir=missing37/sub
as "$t37_k" PUT /v1/experiments/rel/files/a.txt --data-binary hello
check "... an upload is 500, and api.log names $t37_dev/missing37/sub (got $STATUS)" \
    bash -c "[ $STATUS = 500 ] && grep -F 'trace_id=$TRACE' '$FETCHML_VAR/log/api.log' | grep -qF \"opening the user's directory in $t37_dev/missing37/sub failed\""
check "a reload back to the absolute paths (the dev config)" exp_user_config e37 "$t37_k"
as "$t37_k" GET /v1/experiments/rel/files/a.txt
check "... and the relative tree is no longer the one served (got $STATUS)" status_is 404
rm -rf "$t37_dev/exp37" "$t37_dev/api37.log" "$FETCHML_VAR/experiments/e37"
