// cdp_bench_ingest: loads NDJSON events through cdp.ingest, and (in bench mode) measures it side
// by side with the baseline of BENCHMARKS.md, COPY into a jsonb column, on the same lines, from
// the same process, with the same batch size and a commit per batch for both.
//
//   cdp_bench_ingest --db CONNINFO --file events.ndjson [--batch 500] [--mode load|bench] [--rounds 5]
#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

struct Batch {
    std::string json;  // a JSON array of the events, for cdp.ingest
    std::string copy;  // the same events as COPY text-format lines
    size_t events = 0;
};

std::vector<Batch> read_batches(const std::string& path, size_t batch_size, size_t& total) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::vector<Batch> batches;
    std::string line;
    total = 0;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (batches.empty() || batches.back().events == batch_size) batches.emplace_back();
        Batch& b = batches.back();
        b.json += b.events == 0 ? "[" : ",";
        b.json += line;
        for (char c : line) {
            if (c == '\\') b.copy += "\\\\";  // COPY text format: a backslash escapes
            else b.copy += c;
        }
        b.copy += '\n';
        ++b.events;
        ++total;
    }
    for (Batch& b : batches) b.json += "]";
    return batches;
}

// CPU seconds the server backend has used so far, read from /proc when the server runs on this
// machine (else a negative number). CPU time is much steadier than wall time on a shared
// machine, so the bench reports its ratio too.
double backend_cpu_seconds(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (pid <= 0 || !std::getline(stat, line)) return -1;
    size_t close = line.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) return -1;
    std::istringstream fields(line.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {  // fields 14 and 15: utime, stime
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Totals {
    long long accepted = 0, duplicates = 0, rejected = 0;
};

double run_ingest(pqxx::connection& c, const std::vector<Batch>& batches, Totals& totals) {
    auto start = Clock::now();
    for (const Batch& b : batches) {
        pqxx::work w(c);
        pqxx::result r = w.exec_prepared("ingest", b.json);
        totals.accepted += r[0][0].as<long long>();
        totals.duplicates += r[0][1].as<long long>();
        totals.rejected += r[0][2].as<long long>();
        w.commit();
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
}

double run_copy(pqxx::connection& c, const std::vector<Batch>& batches) {
    auto start = Clock::now();
    for (const Batch& b : batches) {
        pqxx::work w(c);
        pqxx::tablewriter writer(w, "cdp_bench_raw");
        size_t pos = 0;
        while (pos < b.copy.size()) {
            size_t nl = b.copy.find('\n', pos);
            writer.write_raw_line(b.copy.substr(pos, nl - pos));
            pos = nl + 1;
        }
        writer.complete();
        w.commit();
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
}

void reset(pqxx::connection& c) {
    pqxx::nontransaction n(c);
    n.exec("TRUNCATE cdp.events, cdp.rejected_events, cdp_internal.message_ids, cdp_internal.session_state,"
           " cdp.identifiers, cdp_internal.identity_edges, cdp.identity_changes, cdp.profiles, cdp_internal.profile_state,"
           " cdp.segment_members, cdp.segment_changes, cdp_internal.trigger_state");
    n.exec("DROP TABLE IF EXISTS cdp_bench_raw");
    n.exec("CREATE TABLE cdp_bench_raw (doc jsonb)");
    n.exec("CHECKPOINT");
}

}  // namespace

int main(int argc, char** argv) {
    std::string db, file, mode = "load", stitch = "off", profiles = "on", label;
    size_t batch_size = 500;
    int rounds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--db")) db = argv[i + 1];
        else if (!std::strcmp(argv[i], "--file")) file = argv[i + 1];
        else if (!std::strcmp(argv[i], "--batch")) batch_size = std::stoul(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--mode")) mode = argv[i + 1];
        else if (!std::strcmp(argv[i], "--rounds")) rounds = std::stoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--stitch")) stitch = argv[i + 1];
        else if (!std::strcmp(argv[i], "--profiles")) profiles = argv[i + 1];
        else if (!std::strcmp(argv[i], "--label")) label = argv[i + 1];  // names the workload in the line
    }
    if (file.empty() || (mode != "load" && mode != "bench") || (stitch != "on" && stitch != "off") ||
        (profiles != "on" && profiles != "off")) {
        std::cerr << "usage: cdp_bench_ingest --db CONNINFO --file events.ndjson [--batch N] [--mode load|bench] "
                     "[--rounds N] [--stitch on|off] [--profiles on|off] [--label NAME]\n";
        return 2;
    }
    try {
        size_t total = 0;
        std::vector<Batch> batches = read_batches(file, batch_size, total);
        pqxx::connection c(db);
        c.prepare("ingest", "SELECT accepted, duplicates, rejected FROM cdp.ingest($1)");
        if (mode == "bench") {
            // Off: the events-only workload of BENCHMARKS.md; on: with identity stitching.
            pqxx::nontransaction n(c);
            n.exec("SET cdp.stitch_identities = " + stitch);
            n.exec("SET cdp.update_profiles = " + profiles);  // profile records, with stitching
        }
        const char* workload = !label.empty()     ? label.c_str()
                               : stitch == "off"  ? "ingest"
                               : profiles == "on" ? "ingest+identity+profiles"
                                                  : "ingest+identity";
        if (mode == "load") {
            Totals t;
            double s = run_ingest(c, batches, t);
            std::printf("loaded %zu events in %.2f s (%.0f events/s): accepted=%lld duplicates=%lld rejected=%lld\n",
                        total, s, total / s, t.accepted, t.duplicates, t.rejected);
            return 0;
        }
        // Each round runs both, one after the other (which goes first alternates), so that both
        // see the same machine; the ratio reported is the median of the rounds' ratios, the
        // rates the best of each.
        int pid = 0;
        {
            pqxx::nontransaction n(c);
            pid = n.exec("SELECT pg_backend_pid()")[0][0].as<int>();
        }
        double best_ours = 1e300, best_copy = 1e300;
        std::vector<double> ratios, cpu_ratios;
        double cpu_ours = 0, cpu_copy = 0;
        auto cpu_of = [&](auto&& run, double& cpu_total) {
            double before = backend_cpu_seconds(pid);
            double seconds = run();
            double after = backend_cpu_seconds(pid);
            cpu_total = before >= 0 && after >= 0 ? after - before : -1;
            return seconds;
        };
        Totals last;
        for (int round = 0; round < rounds; ++round) {
            Totals t;
            double copy_s, ours_s;
            double cpu_copy_round = -1, cpu_ours_round = -1;
            auto copy_run = [&] {
                reset(c);
                return cpu_of([&] { return run_copy(c, batches); }, cpu_copy_round);
            };
            auto ours_run = [&] {
                reset(c);
                return cpu_of([&] { return run_ingest(c, batches, t); }, cpu_ours_round);
            };
            if (round % 2 == 0) {
                copy_s = copy_run();
                ours_s = ours_run();
            } else {
                ours_s = ours_run();
                copy_s = copy_run();
            }
            if (cpu_copy_round > 0 && cpu_ours_round > 0) {
                cpu_ratios.push_back(cpu_copy_round / cpu_ours_round);
                cpu_copy = cpu_copy_round;
                cpu_ours = cpu_ours_round;
            }
            best_copy = std::min(best_copy, copy_s);
            best_ours = std::min(best_ours, ours_s);
            ratios.push_back(copy_s / ours_s);
            last = t;
        }
        std::sort(ratios.begin(), ratios.end());
        auto median_of = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
        };
        double median = median_of(ratios);
        if (last.accepted != static_cast<long long>(total))
            std::fprintf(stderr, "warning: accepted %lld of %zu (duplicates %lld, rejected %lld)\n", last.accepted,
                         total, last.duplicates, last.rejected);
        double ours = total / best_ours, base = total / best_copy;
        std::printf("%s  ours=%.0f events/s  baseline=%.0f rows/s (COPY jsonb)  ratio=%.2f  "
                    "[%zu events, batch %zu, %d rounds: median ratio, best rates; ratios %.2f..%.2f]\n",
                    workload, ours, base, median, total, batch_size, rounds, ratios.front(), ratios.back());
        if (!cpu_ratios.empty())
            std::printf("%s-backend-cpu  ours=%.2f us/event  baseline=%.2f us/row (COPY jsonb)  ratio=%.2f  "
                        "[server backend CPU time from /proc, median of rounds; last round shown]\n",
                        workload, cpu_ours * 1e6 / total, cpu_copy * 1e6 / total, median_of(cpu_ratios));
    } catch (const std::exception& e) {
        std::cerr << "cdp_bench_ingest: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
