# Cancel and delete (README "Calling the API"): ownership, RBAC, status rules.

as researcher POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"to-cancel","datasets":[]}'
T1=$(json .id)
as admin POST /v1/tasks -H 'Content-Type: application/json' -d '{"job_name":"admins"}'
T2=$(json .id)

as analyst POST "/v1/tasks/$T1/cancel"
check "analyst cannot cancel (no jobs:update) -> 403" status_is 403
as researcher POST "/v1/tasks/$T2/cancel"
check "researcher cancelling admin's task -> 404" status_is 404
as researcher POST "/v1/tasks/$T1/cancel"
check "researcher cancels own task -> 200" status_is 200
check "the task is cancelled with ended_at" bash -c "jq -e '.status==\"cancelled\" and (.ended_at|type)==\"string\"' '$B' >/dev/null"
check "an empty datasets list stays a list" bash -c "jq -e '.datasets==[]' '$B' >/dev/null"
check "a cancelled task leaves the queue" bash -c "[ -z \"\$(rcli ZSCORE fetchml:queue '$T1')\" ]"
as researcher POST "/v1/tasks/$T1/cancel"
check "cancelling twice -> 409 CONFLICT" error_is 409 CONFLICT
as researcher GET "/v1/tasks?status=cancelled"
check "status filter finds the cancelled task" bash -c "jq -e --arg id '$T1' '.tasks|map(.id)|index(\$id)' '$B' >/dev/null"

as researcher DELETE "/v1/tasks/$T1"
check "researcher has no jobs:delete -> 403" status_is 403
as admin DELETE "/v1/tasks/$T1"
check "admin deletes the researcher's task -> 204" status_is 204
as admin GET "/v1/tasks/$T1"
check "a deleted task is gone -> 404" status_is 404
check "its index entries are gone" bash -c "[ -z \"\$(rcli ZSCORE fetchml:user:researcher:tasks '$T1')\$(rcli ZSCORE fetchml:tasks '$T1')\" ]"
as admin POST "/v1/tasks/not-a-uuid/cancel"
check "a malformed id -> 404" status_is 404
as admin DELETE "/v1/tasks/$T2"
check "admin deletes own queued task -> 204" status_is 204
