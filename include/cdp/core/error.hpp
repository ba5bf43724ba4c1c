// Errors the core raises; the PostgreSQL boundary maps each kind to an SQLSTATE.
#pragma once
#include "cdp/core/pure.hpp"

#include <stdexcept>
#include <string>

namespace cdp {

enum class ErrorKind {
    InvalidParameter,  // a caller passed a value the function cannot use (22023)
    DataException,     // the data itself is wrong (22000)
    ConfigError,       // a configuration file or setting is unusable (F0000)
    Cancelled,         // the query was cancelled while core code ran (57014)
    Internal,          // a bug: should never happen (XX000)
};

// An error with the three parts every PostgreSQL error report has.
class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, std::string message, std::string detail = {}, std::string hint = {})
        : std::runtime_error(message), kind_(kind), detail_(std::move(detail)), hint_(std::move(hint)) {}

    ErrorKind kind() const noexcept { return kind_; }
    const std::string& detail() const noexcept { return detail_; }
    const std::string& hint() const noexcept { return hint_; }

private:
    ErrorKind kind_;
    std::string detail_;
    std::string hint_;
};

// Long-running core loops call this; it throws ErrorKind::Cancelled when the host asked to stop.
void check_for_cancel();

// The host (the PostgreSQL layer) installs the probe that tells whether a cancel is pending.
void set_cancel_probe(bool (*probe)());

}  // namespace cdp
