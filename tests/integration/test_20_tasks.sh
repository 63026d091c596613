# Tasks (README "Calling the API", docs/redis-layout.md): RBAC on create, storage in Redis, ownership.

as analyst POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"train"}'
check "analyst POST /v1/tasks -> 403" status_is 403
check "403 body has code FORBIDDEN" error_body_is FORBIDDEN

as researcher POST /v1/tasks -H 'Content-Type: application/json' \
    -d '{"job_name":"train-resnet","priority":7,"args":"--epochs 3","commit_id":"0123456789abcdef0123456789abcdef01234567","metadata":{"lr":0.1}}'
check "researcher POST /v1/tasks -> 201" status_is 201
TASK_ID=$(json .id)
check "the task has a UUID v4 id" bash -c "[[ '$TASK_ID' =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]"
check "the task is queued, owned by researcher, priority 7" \
    bash -c "jq -e '.status==\"queued\" and .user==\"researcher\" and .priority==7' '$B' >/dev/null"
check "created_at is RFC 3339 UTC with ms" bash -c "jq -er .created_at '$B' | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'"

check "the task record is in Redis" bash -c "[ \"\$(rcli HGET 'fetchml:task:$TASK_ID' spec | jq -r .id)\" = '$TASK_ID' ]"
check "the task is in the priority queue" bash -c "rcli ZSCORE fetchml:queue '$TASK_ID' | grep -q ."
check "the task is in the researcher's index" bash -c "rcli ZSCORE fetchml:user:researcher:tasks '$TASK_ID' | grep -q ."

as researcher GET "/v1/tasks/$TASK_ID"
check "GET /v1/tasks/{id} -> 200 with the same task" bash -c "[ $STATUS = 200 ] && [ \"\$(jq -r .id '$B')\" = '$TASK_ID' ]"

as researcher GET /v1/tasks
check "GET /v1/tasks lists it" bash -c "[ $STATUS = 200 ] && jq -e --arg id '$TASK_ID' '.tasks | map(.id) | index(\$id)' '$B' >/dev/null"
check "GET /v1/tasks reports total" bash -c "jq -e '.total >= 1' '$B' >/dev/null"

as admin POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"admin-job"}'
ADMIN_TASK=$(json .id)
check "admin POST -> 201" status_is 201
as researcher GET "/v1/tasks/$ADMIN_TASK"
check "researcher asking for admin's task -> 404 (not 403)" status_is 404
check "404 body" error_body_is NOT_FOUND
as researcher GET /v1/tasks
check "researcher's list does not include admin's task" \
    bash -c "! jq -e --arg id '$ADMIN_TASK' '.tasks | map(.id) | index(\$id)' '$B' >/dev/null"
as admin GET "/v1/tasks/$TASK_ID"
check "admin sees the researcher's task" status_is 200

as analyst GET /v1/tasks
check "analyst can read (jobs:read) -> 200" status_is 200

# post_task BODY: the researcher creates a task from BODY, sent as it is
# (curl --data-binary: @FILE sends the file).
post_task() { as researcher POST /v1/tasks -H 'Content-Type: application/json' --data-binary "$1"; }

post_task '{"job_name":'
check "malformed JSON -> 400 BAD_REQUEST" error_is 400 BAD_REQUEST
post_task '{"job_name":"x","priority":11}'
check "priority 11 -> 422 VALIDATION_ERROR" error_is 422 VALIDATION_ERROR
post_task '{"job_name":"x","user":"admin"}'
check "unknown field (user) -> 422" status_is 422
post_task '{"priority":3}'
check "missing job_name -> 422" status_is 422
as researcher GET "/v1/tasks?limit=1001"
check "limit over 1000 -> 400" status_is 400
# Dot segments, sent as they are: nginx resolves them before routing (the app
# routes on nginx's normalised $uri), and refuses a path that climbs above /.
as researcher GET "/v1/tasks/../../health" --path-as-is
check "a raw /v1/tasks/../../health is resolved by nginx to /health -> 200" \
    bash -c "[ $STATUS = 200 ] && jq -e '.status==\"ok\"' '$B' >/dev/null"
as researcher GET "/v1/../../health" --path-as-is
forget_trace # refused by nginx: only nginx's logs have it
check "a raw path that climbs above / -> 400 BAD_REQUEST from nginx" \
    error_is 400 BAD_REQUEST
big=$(head -c 1100000 /dev/zero | tr '\0' a)
STATUS=$(printf '{"job_name":"%s"}' "$big" | curl -sk -o "$B" -w '%{http_code}' -H "X-API-Key: $FETCHML_RESEARCHER_KEY" \
    -H 'Content-Type: application/json' --data-binary @- "$BASE/v1/tasks")
check "a body over 1 MiB -> 413 PAYLOAD_TOO_LARGE" error_is 413 PAYLOAD_TOO_LARGE
post_task '{"job_name":"a"}x'
check "trailing bytes after the JSON body -> 400" status_is 400
# From a file: a shell string cannot hold the NUL (it would end there).
printf '{"job_name":"tr\0unc"}' >"$OUT/nul.json"
check "the body file holds a NUL" bash -c "[ \"\$(tr -cd '\\000' <'$OUT/nul.json' | wc -c)\" = 1 ]"
post_task @"$OUT/nul.json"
check "a NUL in the body -> 400" status_is 400
