// The per-thread block pool behind RecyclingAllocator (proxy/session.hpp): the 16 KiB buffer
// each forwarded request reads dockerd's answer into was a large malloc and free every time.
// Sessions never migrate, so a block goes back to the thread that took it.

#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "proxy/session.hpp"

namespace berth::proxy {

namespace {

// The recycled blocks of RecyclingAllocator: a few per size, per thread.
class BlockPool {
 public:
  BlockPool() = default;
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  ~BlockPool() {
    for (const auto& [bytes, block] : blocks_) {
      ::operator delete(block, bytes);
    }
  }
  void* take(std::size_t bytes) noexcept {
    for (std::size_t i = blocks_.size(); i-- > 0;) {
      if (blocks_[i].first == bytes) {
        void* block = blocks_[i].second;
        blocks_[i] = blocks_.back();
        blocks_.pop_back();
        return block;
      }
    }
    return nullptr;
  }
  bool keep(void* block, std::size_t bytes) {
    // A buffer grown for a large header is handed back: the pool keeps only ordinary ones.
    if (blocks_.size() >= 16 || bytes > 64 * 1024) {
      return false;
    }
    blocks_.emplace_back(bytes, block);
    return true;
  }

 private:
  std::vector<std::pair<std::size_t, void*>> blocks_;
};

BlockPool& block_pool() {
  thread_local BlockPool pool;
  return pool;
}

}  // namespace

void* recycled_allocate(std::size_t bytes) {
  if (void* block = block_pool().take(bytes)) {
    return block;
  }
  return ::operator new(bytes);
}

void recycled_free(void* p, std::size_t bytes) noexcept {
  try {
    if (block_pool().keep(p, bytes)) {
      return;
    }
  } catch (...) {  // the pool's vector could not grow: hand the block back instead
  }
  ::operator delete(p, bytes);
}

}  // namespace berth::proxy
