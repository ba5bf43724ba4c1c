#include "cdp/pg/guard.hpp"

namespace cdp::pg {

namespace {

void copy(char* dst, size_t size, const char* src) noexcept {
    std::snprintf(dst, size, "%s", src != nullptr ? src : "");
}

int sqlstate_of(cdp::ErrorKind kind) {
    switch (kind) {
        case cdp::ErrorKind::InvalidParameter: return ERRCODE_INVALID_PARAMETER_VALUE;
        case cdp::ErrorKind::DataException: return ERRCODE_DATA_EXCEPTION;
        case cdp::ErrorKind::ConfigError: return ERRCODE_CONFIG_FILE_ERROR;
        case cdp::ErrorKind::Cancelled: return ERRCODE_QUERY_CANCELED;
        case cdp::ErrorKind::Internal: return ERRCODE_INTERNAL_ERROR;
    }
    return ERRCODE_INTERNAL_ERROR;
}

}  // namespace

void capture(CapturedError& out, const cdp::Error& e) noexcept {
    out.sqlstate = sqlstate_of(e.kind());
    out.cancelled = e.kind() == cdp::ErrorKind::Cancelled;
    copy(out.message, sizeof out.message, e.what());
    copy(out.detail, sizeof out.detail, e.detail().c_str());
    copy(out.hint, sizeof out.hint, e.hint().c_str());
}

void capture(CapturedError& out, const std::bad_alloc&) noexcept {
    out.sqlstate = ERRCODE_OUT_OF_MEMORY;
    out.cancelled = false;
    copy(out.message, sizeof out.message, "out of memory in pg_cdp");
    copy(out.detail, sizeof out.detail, "A C++ allocation failed.");
    copy(out.hint, sizeof out.hint, "Send smaller batches, or give the server more memory.");
}

void capture(CapturedError& out, const std::exception& e) noexcept {
    out.sqlstate = ERRCODE_INTERNAL_ERROR;
    out.cancelled = false;
    copy(out.message, sizeof out.message, "internal error in pg_cdp");
    copy(out.detail, sizeof out.detail, e.what());
    copy(out.hint, sizeof out.hint, "This is a bug; please report it with the statement that caused it.");
}

void capture_unknown(CapturedError& out) noexcept {
    out.sqlstate = ERRCODE_INTERNAL_ERROR;
    out.cancelled = false;
    copy(out.message, sizeof out.message, "internal error in pg_cdp");
    copy(out.detail, sizeof out.detail, "An exception of unknown type was thrown.");
    copy(out.hint, sizeof out.hint, "This is a bug; please report it with the statement that caused it.");
}

void raise(const CapturedError& err) {
    if (err.cancelled) CHECK_FOR_INTERRUPTS();  // reports the cancel or termination as PostgreSQL would
    ereport(ERROR, (errcode(err.sqlstate), errmsg("%s", err.message),
                    err.detail[0] != '\0' ? errdetail("%s", err.detail) : 0,
                    err.hint[0] != '\0' ? errhint("%s", err.hint) : 0));
    pg_unreachable();
}

}  // namespace cdp::pg
