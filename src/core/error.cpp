#include "cdp/core/error.hpp"

namespace cdp {

namespace {
bool (*cancel_probe)() = nullptr;
}

void set_cancel_probe(bool (*probe)()) { cancel_probe = probe; }

void check_for_cancel() {
    if (cancel_probe != nullptr && cancel_probe())
        throw Error(ErrorKind::Cancelled, "canceling statement due to user request");
}

}  // namespace cdp
