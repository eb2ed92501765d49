#include "util/blocking.h"

namespace sessionserver {
namespace {
thread_local bool may_block = true;
}  // namespace

bool MayBlock() { return may_block; }

BlockingScope::BlockingScope(bool may) : previous_(may_block) { may_block = may; }
BlockingScope::~BlockingScope() { may_block = previous_; }

}  // namespace sessionserver
