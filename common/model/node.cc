#include "common/model/node.h"

namespace herd::model {

const char* NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kUp:
      return "UP";
    case NodeState::kDown:
      return "DOWN";
    case NodeState::kDrain:
      return "DRAIN";
  }
  return "UNKNOWN";
}

}  // namespace herd::model
