// The byte formats of stored states (trait merge states, computed trait states): fixed-width
// integers in the machine's order, texts as a 32-bit length then the bytes. Readers throw
// std::runtime_error on anything cut short, so a damaged state is an error, never a crash.
#pragma once
#include "cdp/core/pure.hpp"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cdp {

struct ByteWriter {
    std::string s;
    template <typename T>
    void put(T v) {
        s.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    void text(std::string_view t) {
        put<std::uint32_t>(static_cast<std::uint32_t>(t.size()));
        s += t;
    }
};

struct ByteReader {
    std::string_view s;
    const char* what;  // names the state in errors ("the merge state")
    template <typename T>
    T get() {
        if (s.size() < sizeof(T)) throw std::runtime_error(std::string(what) + " ends early");
        T v;
        std::memcpy(&v, s.data(), sizeof v);
        s.remove_prefix(sizeof v);
        return v;
    }
    std::string text() {
        auto n = get<std::uint32_t>();
        if (s.size() < n) throw std::runtime_error(std::string("a text of ") + what + " is cut");
        std::string t(s.substr(0, n));
        s.remove_prefix(n);
        return t;
    }
    void finish() const {
        if (!s.empty()) throw std::runtime_error(std::string(what) + " has bytes past its end");
    }
};

}  // namespace cdp
