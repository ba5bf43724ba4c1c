#include "cdp/pg/row_writer.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "parser/parsetree.h"
#include "utils/rls.h"
}

namespace cdp::pg {

namespace {
// Enough rows to fill several pages per multi-insert; slots are made once and reused per flush.
constexpr int kMaxBufferedRows = 128;
constexpr int kMaxBufferedPartitions = 8;

// Rows waiting for one leaf partition.
struct PartitionBuffer {
    ResultRelInfo* rri;
    BulkInsertState bistate;  // one per partition: a bulk-insert state pins one relation's page
    TupleTableSlot* slots[kMaxBufferedRows];
    int used;
};
}  // namespace

struct RowWriter {
    MemoryContext context;  // where the writer and its buffers live (callers reset theirs per row)
    Relation rel;
    EState* estate;
    ModifyTableState* mtstate;
    ResultRelInfo* root;
    PartitionTupleRouting* proute;
    TupleTableSlot* root_slot;
    CommandId cid;
    PartitionBuffer buffers[kMaxBufferedPartitions];
    int nbuffers;
};

namespace {

void flush(RowWriter* w, PartitionBuffer* b) {
    if (b->used == 0) return;
    MemoryContext old = MemoryContextSwitchTo(GetPerTupleMemoryContext(w->estate));
    table_multi_insert(b->rri->ri_RelationDesc, b->slots, b->used, w->cid, 0, b->bistate);
    MemoryContextSwitchTo(old);
    for (int i = 0; i < b->used; ++i) {
        if (b->rri->ri_NumIndices > 0) {
            List* recheck = ExecInsertIndexTuples(b->rri, b->slots[i], w->estate, false, false, nullptr, NIL);
            list_free(recheck);
        }
        ExecClearTuple(b->slots[i]);
    }
    ResetPerTupleExprContext(w->estate);
    b->used = 0;
}

void flush_all(RowWriter* w) {
    for (int i = 0; i < w->nbuffers; ++i) flush(w, &w->buffers[i]);
}

PartitionBuffer* buffer_for(RowWriter* w, ResultRelInfo* rri) {
    for (int i = 0; i < w->nbuffers; ++i)
        if (w->buffers[i].rri == rri) return &w->buffers[i];
    if (w->nbuffers == kMaxBufferedPartitions) {
        // Rows spread over many partitions (a backfill): write out and start over.
        flush_all(w);
        for (int i = 0; i < w->nbuffers; ++i) FreeBulkInsertState(w->buffers[i].bistate);
        w->nbuffers = 0;
    }
    if (rri->ri_TrigDesc != nullptr &&
        (rri->ri_TrigDesc->trig_insert_before_row || rri->ri_TrigDesc->trig_insert_after_row ||
         rri->ri_TrigDesc->trig_insert_instead_row))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("partition \"%s\" has row triggers on INSERT", RelationGetRelationName(rri->ri_RelationDesc)),
                        errdetail("cdp.ingest writes rows in bulk and does not fire triggers."),
                        errhint("Drop the trigger; follow new events with logical decoding or a scheduled query.")));
    PartitionBuffer* b = &w->buffers[w->nbuffers++];
    memset(b, 0, sizeof *b);
    b->rri = rri;
    b->bistate = GetBulkInsertState();
    return b;
}

}  // namespace

RowWriter* row_writer_begin(Oid relid) {
    AclResult acl = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
    if (acl != ACLCHECK_OK) aclcheck_error(acl, OBJECT_TABLE, get_rel_name(relid));

    auto* w = static_cast<RowWriter*>(palloc0(sizeof(RowWriter)));
    w->context = CurrentMemoryContext;
    w->rel = table_open(relid, RowExclusiveLock);
    if (w->rel->trigdesc != nullptr &&
        (w->rel->trigdesc->trig_insert_before_row || w->rel->trigdesc->trig_insert_after_row ||
         w->rel->trigdesc->trig_insert_instead_row || w->rel->trigdesc->trig_insert_before_statement ||
         w->rel->trigdesc->trig_insert_after_statement))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("table \"%s\" has INSERT triggers", RelationGetRelationName(w->rel)),
                        errdetail("cdp.ingest writes rows in bulk and does not fire triggers."),
                        errhint("Drop the trigger; follow new events with logical decoding or a scheduled query.")));
    if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("table \"%s\" has row-level security enabled", RelationGetRelationName(w->rel)),
                        errdetail("cdp.ingest writes rows in bulk and would not apply the policies."),
                        errhint("Disable row-level security on it, or let a role that bypasses it run ingest.")));
    w->estate = CreateExecutorState();
    w->cid = GetCurrentCommandId(true);
    w->estate->es_output_cid = w->cid;

    RangeTblEntry* rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = relid;
    rte->relkind = w->rel->rd_rel->relkind;
    rte->rellockmode = RowExclusiveLock;
    rte->requiredPerms = ACL_INSERT;
    ExecInitRangeTable(w->estate, list_make1(rte));

    w->root = makeNode(ResultRelInfo);
    ExecInitResultRelation(w->estate, w->root, 1);
    CheckValidResultRel(w->root, CMD_INSERT);

    w->mtstate = makeNode(ModifyTableState);
    w->mtstate->ps.plan = nullptr;
    w->mtstate->ps.state = w->estate;
    w->mtstate->operation = CMD_INSERT;
    w->mtstate->mt_nrels = 1;
    w->mtstate->resultRelInfo = w->root;
    w->mtstate->rootResultRelInfo = w->root;

    if (w->rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
        w->proute = ExecSetupPartitionTupleRouting(w->estate, w->rel);  // leaves open their own indexes
    else
        ExecOpenIndices(w->root, false);
    w->root_slot = ExecInitExtraTupleSlot(w->estate, RelationGetDescr(w->rel), &TTSOpsVirtual);
    return w;
}

TupleDesc row_writer_descriptor(RowWriter* w) { return RelationGetDescr(w->rel); }

void row_writer_add(RowWriter* w, Datum* values, bool* nulls) {
    MemoryContext caller = MemoryContextSwitchTo(w->context);
    TupleTableSlot* root_slot = w->root_slot;
    ExecClearTuple(root_slot);
    int natts = root_slot->tts_tupleDescriptor->natts;
    memcpy(root_slot->tts_values, values, natts * sizeof(Datum));
    memcpy(root_slot->tts_isnull, nulls, natts * sizeof(bool));
    ExecStoreVirtualTuple(root_slot);

    ResultRelInfo* target = w->root;
    if (w->proute != nullptr) target = ExecFindPartition(w->mtstate, w->root, w->proute, root_slot, w->estate);
    PartitionBuffer* b = buffer_for(w, target);
    TupleDesc desc = RelationGetDescr(target->ri_RelationDesc);
    if (b->slots[b->used] == nullptr)
        b->slots[b->used] = ExecAllocTableSlot(&w->estate->es_tupleTable, desc, &TTSOpsHeapTuple);
    // The tuple is formed once, straight from the values, and owned by the slot until flushed.
    TupleConversionMap* map = target->ri_RootToPartitionMap;  // a partition with another column layout
    HeapTuple tuple;
    if (map == nullptr) {
        tuple = heap_form_tuple(desc, values, nulls);
    } else {
        Datum* mapped = static_cast<Datum*>(palloc(sizeof(Datum) * desc->natts));
        bool* mapped_nulls = static_cast<bool*>(palloc(sizeof(bool) * desc->natts));
        for (int i = 0; i < desc->natts; ++i) {
            AttrNumber from = map->attrMap->attnums[i];
            mapped_nulls[i] = from == 0 || nulls[from - 1];
            mapped[i] = from == 0 ? (Datum)0 : values[from - 1];
        }
        tuple = heap_form_tuple(desc, mapped, mapped_nulls);
        pfree(mapped);
        pfree(mapped_nulls);
    }
    TupleTableSlot* slot = b->slots[b->used];
    ExecStoreHeapTuple(tuple, slot, true);
    slot->tts_tableOid = RelationGetRelid(target->ri_RelationDesc);
    if (desc->constr != nullptr) ExecConstraints(target, slot, w->estate);  // NOT NULL and CHECK
    if (++b->used == kMaxBufferedRows) flush(w, b);
    MemoryContextSwitchTo(caller);
}

void row_writer_end(RowWriter* w) {
    flush_all(w);
    for (int i = 0; i < w->nbuffers; ++i) FreeBulkInsertState(w->buffers[i].bistate);
    ExecResetTupleTable(w->estate->es_tupleTable, false);
    if (w->proute != nullptr) ExecCleanupTupleRouting(w->mtstate, w->proute);
    ExecCloseResultRelations(w->estate);
    ExecCloseRangeTableRelations(w->estate);
    FreeExecutorState(w->estate);
    table_close(w->rel, NoLock);
    pfree(w);
}

}  // namespace cdp::pg
