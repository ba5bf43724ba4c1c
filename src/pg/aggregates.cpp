#include "cdp/pg/aggregates.hpp"

namespace cdp::pg {

MemoryContext aggregate_context(FunctionCallInfo fcinfo, const char* function) {
    MemoryContext context;
    if (!AggCheckCallContext(fcinfo, &context))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("%s called outside an aggregate", function),
                        errdetail("It is a support function of a cdp aggregate."),
                        errhint("Call the aggregate itself, e.g. cdp.window_funnel(...) or cdp.merge_traits(...).")));
    return context;
}

void corrupt_aggregate_state(const char* aggregate, const char* why) {
    ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("invalid serialised state of %s: %s", aggregate, why),
                    errdetail("Aggregate states take this byte form between processes (parallel workers) and where they are kept."),
                    errhint("Make sure every backend runs the same version of the cdp library.")));
}

}  // namespace cdp::pg
