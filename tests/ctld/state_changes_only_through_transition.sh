#!/bin/sh
# Every change of a job's state in herd-ctld goes through JobTable::Transition: no file of ctld/
# or ctld/rpc/ but ctld/job_table.cc assigns a job's state (a node's state is another matter).
found=$(grep -nE '(\.|->)state[[:space:]]*=[^=]' "$1"/ctld/*.cc "$1"/ctld/rpc/*.cc | grep -v 'NodeState' |
        grep -v '/job_table\.cc:')
if [ -n "$found" ]; then
  echo "job states changed outside JobTable::Transition (ctld/job_table.h):"
  echo "$found"
  exit 1
fi
echo "every job state change in ctld/ goes through JobTable::Transition"
