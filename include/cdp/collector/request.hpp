// The collector's handling of one HTTP request body, apart from the network and the database:
// decompress, find the write key, validate the JSON, and turn it into the event items cdp.ingest
// takes (the type an endpoint implies, context.ip stamped where the client did not send one).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cdp::collector {

// Inflates a gzip stream; nothing when the bytes are not one (or are larger than `limit` inflated).
std::optional<std::string> gunzip(std::string_view bytes, size_t limit);
bool looks_gzipped(std::string_view bytes);

// The user name of an HTTP Basic Authorization header ("Basic base64(writeKey:)").
std::optional<std::string> basic_auth_user(std::string_view header);

// What an endpoint path means: a batch, or one call of a type ("track", ...); nothing for a
// path the collector does not serve.
struct Endpoint {
    bool batch = false;
    std::string type;  // single calls: the Spec type
};
std::optional<Endpoint> endpoint_of(std::string_view path);

struct Prepared {
    int status = 200;               // 400 for a body that is not what the endpoint takes
    std::string error;              // why, for 400
    std::string write_key;          // from the body, when it carried one
    std::vector<std::string> items;  // each event as JSON text, ready for cdp.ingest
};

// Validates and prepares a body for an endpoint. `ip` is stamped as context.ip on items that
// carry none.
Prepared prepare(std::string_view body, const Endpoint& endpoint, std::string_view ip);

}  // namespace cdp::collector
