#include "cdp/core/huge_pages.hpp"

#include <sys/mman.h>

namespace cdp {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;
}

void* allocate_large(std::size_t bytes) {
    if (bytes < kHugePage) return ::operator new(bytes);
    // Whole huge pages, aligned to one: the kernel backs only aligned 2 MB ranges with them.
    std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = ::operator new(rounded, std::align_val_t{kHugePage});
#ifdef MADV_HUGEPAGE
    (void)madvise(p, rounded, MADV_HUGEPAGE);  // advice only: without huge pages, plain pages
#endif
    return p;
}

void release_large(void* p, std::size_t bytes) noexcept {
    if (bytes < kHugePage) ::operator delete(p);
    else ::operator delete(p, std::align_val_t{kHugePage});
}

}  // namespace cdp
