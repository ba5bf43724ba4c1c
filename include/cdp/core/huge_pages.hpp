// An allocator for the large arrays of graph work (hash tables, union-find parents): arrays of
// 2 MB or more are aligned to 2 MB and asked to be backed by transparent huge pages, which Linux
// gives only on request (transparent_hugepage=madvise, Debian's default). Their random accesses
// then miss the TLB far less, and filling them faults once per 2 MB instead of once per 4 kB.
// Smaller arrays, and systems without huge pages, get plain operator new.
#pragma once

#include <cstddef>
#include <new>

namespace cdp {

void* allocate_large(std::size_t bytes);
void release_large(void* p, std::size_t bytes) noexcept;

template <typename T>
struct HugePageAllocator {
    using value_type = T;
    HugePageAllocator() = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
        return static_cast<T*>(allocate_large(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept { release_large(p, n * sizeof(T)); }
    template <typename U>
    bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
    template <typename U>
    bool operator!=(const HugePageAllocator<U>&) const noexcept { return false; }
};

}  // namespace cdp
