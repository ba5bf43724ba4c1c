// The byte formats of stored states (trait merge states, computed trait states): fixed-width
// integers in the machine's order, texts as a 32-bit length then the bytes, or (the compact
// forms) counts and lengths as varints: 7 bits a byte, low bits first, so below 128 in one byte.
// Readers throw std::runtime_error on anything cut short, so a damaged state is an error, never
// a crash.
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
    void varint(std::uint64_t v) {
        for (; v >= 0x80; v >>= 7) s += static_cast<char>(v | 0x80);
        s += static_cast<char>(v);
    }
    void short_text(std::string_view t) {
        varint(t.size());
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
    std::uint64_t varint() {
        std::uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            auto byte = get<std::uint8_t>();
            v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
            if ((byte & 0x80) == 0) return v;
        }
        throw std::runtime_error(std::string("a number of ") + what + " is too long");
    }
    // A view of the input's bytes: valid while they are.
    std::string_view short_text() {
        auto n = varint();
        if (s.size() < n) throw std::runtime_error(std::string("a text of ") + what + " is cut");
        std::string_view t = s.substr(0, n);
        s.remove_prefix(n);
        return t;
    }
    void finish() const {
        if (!s.empty()) throw std::runtime_error(std::string(what) + " has bytes past its end");
    }
};

}  // namespace cdp
