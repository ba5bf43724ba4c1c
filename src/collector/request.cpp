#include "cdp/collector/request.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <zlib.h>

#include <cstring>

namespace cdp::collector {

bool looks_gzipped(std::string_view bytes) {
    return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f && static_cast<unsigned char>(bytes[1]) == 0x8b;
}

std::optional<std::string> gunzip(std::string_view bytes, size_t limit) {
    z_stream z;
    std::memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return std::nullopt;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z.avail_in = static_cast<uInt>(bytes.size());
    std::string out;
    char chunk[16384];
    int rc;
    do {
        z.next_out = reinterpret_cast<Bytef*>(chunk);
        z.avail_out = sizeof chunk;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&z);
            return std::nullopt;
        }
        out.append(chunk, sizeof chunk - z.avail_out);
        if (out.size() > limit) {
            inflateEnd(&z);
            return std::nullopt;
        }
    } while (rc != Z_STREAM_END && (z.avail_in > 0 || z.avail_out == 0));
    inflateEnd(&z);
    if (rc != Z_STREAM_END) return std::nullopt;
    return out;
}

std::optional<std::string> basic_auth_user(std::string_view header) {
    constexpr std::string_view kBasic = "Basic ";
    if (header.size() <= kBasic.size() || header.substr(0, kBasic.size()) != kBasic) return std::nullopt;
    std::string_view b64 = header.substr(kBasic.size());
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+' || c == '-') return 62;
        if (c == '/' || c == '_') return 63;
        return -1;
    };
    std::string decoded;
    int bits = 0, acc = 0;
    for (char c : b64) {
        if (c == '=') break;
        int v = value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            decoded.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    size_t colon = decoded.find(':');
    return colon == std::string::npos ? decoded : decoded.substr(0, colon);
}

std::optional<Endpoint> endpoint_of(std::string_view path) {
    static const std::pair<std::string_view, std::string_view> kPaths[] = {
        {"/v1/track", "track"}, {"/v1/identify", "identify"}, {"/v1/page", "page"}, {"/v1/screen", "screen"},
        {"/v1/group", "group"}, {"/v1/alias", "alias"},       {"/v1/t", "track"},   {"/v1/i", "identify"},
        {"/v1/p", "page"},      {"/v1/s", "screen"},          {"/v1/g", "group"},   {"/v1/a", "alias"}};
    if (path == "/v1/batch" || path == "/v1/b" || path == "/beacon/v1/batch") return Endpoint{true, ""};
    for (const auto& [p, type] : kPaths)
        if (path == p) return Endpoint{false, std::string(type)};
    return std::nullopt;
}

namespace {

std::string text(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return std::string(buf.GetString(), buf.GetSize());
}

// Stamps context.ip where the item has none (a batch's context is already folded into its items).
void stamp_ip(rapidjson::Value& item, std::string_view ip, rapidjson::Document::AllocatorType& a) {
    if (ip.empty() || !item.IsObject()) return;
    auto ctx = item.FindMember("context");
    if (ctx == item.MemberEnd()) {
        item.AddMember("context", rapidjson::Value(rapidjson::kObjectType), a);
        ctx = item.FindMember("context");
    }
    if (!ctx->value.IsObject() || ctx->value.HasMember("ip")) return;
    ctx->value.AddMember("ip", rapidjson::Value(ip.data(), static_cast<rapidjson::SizeType>(ip.size()), a), a);
}

}  // namespace

Prepared prepare(std::string_view body, const Endpoint& endpoint, std::string_view ip) {
    Prepared out;
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError()) {
        out.status = 400;
        out.error = "the body is not valid JSON";
        return out;
    }
    if (!doc.IsObject() && !(endpoint.batch && doc.IsArray())) {
        out.status = 400;
        out.error = endpoint.batch ? "a batch is {\"batch\": [...]}" : "an event is a JSON object";
        return out;
    }
    auto& a = doc.GetAllocator();
    if (doc.IsObject()) {
        auto key = doc.FindMember("writeKey");
        if (key != doc.MemberEnd()) {
            if (key->value.IsString()) out.write_key.assign(key->value.GetString(), key->value.GetStringLength());
            doc.EraseMember(key);
        }
    }
    if (!endpoint.batch) {
        if (!doc.HasMember("type")) doc.AddMember("type", rapidjson::Value(endpoint.type.c_str(), a), a);
        stamp_ip(doc, ip, a);
        out.items.push_back(text(doc));
        return out;
    }
    rapidjson::Value* items = &doc;
    const rapidjson::Value* batch_context = nullptr;
    const rapidjson::Value* batch_integrations = nullptr;
    if (doc.IsObject()) {
        auto b = doc.FindMember("batch");
        if (b == doc.MemberEnd() || !b->value.IsArray()) {
            out.status = 400;
            out.error = "a batch is {\"batch\": [...]}";
            return out;
        }
        items = &b->value;
        auto c = doc.FindMember("context");
        if (c != doc.MemberEnd()) batch_context = &c->value;
        auto i = doc.FindMember("integrations");
        if (i != doc.MemberEnd()) batch_integrations = &i->value;
    }
    for (auto& item : items->GetArray()) {
        if (item.IsObject()) {
            item.EraseMember("writeKey");
            // The batch's context and integrations fill what the item does not set, as cdp.ingest
            // does for an envelope: here each item goes on alone.
            if (batch_context != nullptr && batch_context->IsObject()) {
                auto ctx = item.FindMember("context");
                if (ctx == item.MemberEnd()) {
                    item.AddMember("context", rapidjson::Value(*batch_context, a), a);
                } else if (ctx->value.IsObject()) {
                    for (auto& m : batch_context->GetObject())
                        if (!ctx->value.HasMember(m.name)) ctx->value.AddMember(rapidjson::Value(m.name, a), rapidjson::Value(m.value, a), a);
                }
            }
            if (batch_integrations != nullptr && !item.HasMember("integrations"))
                item.AddMember("integrations", rapidjson::Value(*batch_integrations, a), a);
            stamp_ip(item, ip, a);
        }
        out.items.push_back(text(item));  // an item that is not an object is rejected by ingest, and kept
    }
    return out;
}

}  // namespace cdp::collector
