// cdp-collector: Segment's HTTP Tracking API in front of pg_cdp, so existing SDKs send straight
// into PostgreSQL. Requests wait until their events are committed (200), or learn that they
// were not stored (503 / 429 with Retry-After); concurrent requests share database calls.
//   cdp-collector --db "<libpq conninfo>" --listen 127.0.0.1:8088 [--cors-origin ORIGIN]...
//                 [--trusted-proxy IP]... [--max-batch-bytes N] [--queue-bytes N] [--writers N]
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cdp/collector/request.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace cdp::collector;

struct Options {
    std::string db;
    std::string host = "127.0.0.1";
    int port = 8088;
    std::set<std::string> cors_origins;
    std::set<std::string> trusted_proxies;
    size_t max_batch_bytes = 500 * 1024;
    size_t queue_bytes = 64 << 20;
    int writers = 2;  // database connections writing at once
};

// One request's events, waiting to be committed.
struct Pending {
    int workspace = 0;
    std::vector<std::string> items;
    size_t bytes = 0;
    std::chrono::system_clock::time_point received_at;
    std::promise<bool> stored;  // true once committed; false when the database failed
};

struct Stats {
    std::mutex mu;
    long requests = 0, events = 0, refused = 0, db_errors = 0;
    std::vector<double> latency_ms;
};

class Writer {
public:
    explicit Writer(const Options& o) : options_(o) {
        for (int i = 0; i < o.writers; ++i) threads_.emplace_back([this] { run(); });
    }
    ~Writer() { stop(); }

    // Queues a request; false when the queue is full (the caller answers 429).
    bool push(std::shared_ptr<Pending> p) {
        std::lock_guard<std::mutex> g(mu_);
        if (queued_bytes_ + p->bytes > options_.queue_bytes) return false;
        queued_bytes_ += p->bytes;
        queue_.push_back(std::move(p));
        cv_.notify_one();
        return true;
    }
    void stop() {
        {
            std::lock_guard<std::mutex> g(mu_);
            if (stopping_) return;
            stopping_ = true;
            cv_.notify_all();
        }
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    bool healthy() const { return healthy_; }

    // The workspace and source of a write key, cached for a minute; nothing for an unknown key.
    std::optional<int> workspace_of(const std::string& key) {
        {
            std::lock_guard<std::mutex> g(keys_mu_);
            auto it = keys_.find(key);
            if (it != keys_.end() && Clock::now() - it->second.second < std::chrono::minutes(1)) return it->second.first;
        }
        std::optional<int> ws;  // a database error propagates: the caller answers 503
        pqxx::connection c(options_.db);
        pqxx::nontransaction n(c);
        pqxx::result r = n.exec_params("SELECT workspace_id FROM cdp_internal.write_key_lookup($1)", key);
        if (!r.empty() && !r[0][0].is_null()) ws = r[0][0].as<int>();
        std::lock_guard<std::mutex> g(keys_mu_);
        if (ws) keys_[key] = {*ws, Clock::now()};
        return ws;
    }

private:
    void run() {
        std::unique_ptr<pqxx::connection> conn;
        while (true) {
            std::vector<std::shared_ptr<Pending>> group;
            {
                std::unique_lock<std::mutex> g(mu_);
                cv_.wait(g, [&] { return stopping_ || !queue_.empty(); });
                if (queue_.empty() && stopping_) return;  // drained
                // One workspace per call; many requests per call, up to a few MB.
                int ws = queue_.front()->workspace;
                size_t bytes = 0;
                for (auto it = queue_.begin(); it != queue_.end() && bytes < (4u << 20);) {
                    if ((*it)->workspace != ws) {
                        ++it;
                        continue;
                    }
                    bytes += (*it)->bytes;
                    queued_bytes_ -= (*it)->bytes;
                    group.push_back(std::move(*it));
                    it = queue_.erase(it);
                }
            }
            bool ok = false;
            try {
                if (!conn) {
                    conn = std::make_unique<pqxx::connection>(options_.db);
                    pqxx::nontransaction n(*conn);
                    n.exec("SET cdp.max_batch_bytes = '256MB'");  // the per-request limit is the collector's
                }
                std::string payload = "[";
                for (auto& p : group)
                    for (auto& item : p->items) {
                        if (payload.size() > 1) payload += ',';
                        payload += item;
                    }
                payload += ']';
                auto received = group.front()->received_at;
                for (auto& p : group) received = std::min(received, p->received_at);
                double epoch = std::chrono::duration<double>(received.time_since_epoch()).count();
                pqxx::work w(*conn);
                w.exec_params("SELECT * FROM cdp.ingest($1::text, $2, to_timestamp($3))", payload, group.front()->workspace,
                              epoch);
                w.commit();
                ok = true;
                healthy_ = true;
            } catch (const std::exception& e) {
                std::fprintf(stderr, "{\"level\":\"error\",\"msg\":\"database call failed\",\"detail\":\"%s\"}\n",
                             std::string(e.what()).substr(0, 300).c_str());
                conn.reset();
                healthy_ = false;
            }
            for (auto& p : group) p->stored.set_value(ok);
            if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    }

    const Options& options_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Pending>> queue_;
    size_t queued_bytes_ = 0;
    bool stopping_ = false;
    std::atomic<bool> healthy_{true};
    std::vector<std::thread> threads_;  // one database connection each
    std::mutex keys_mu_;
    std::map<std::string, std::pair<int, Clock::time_point>> keys_;
};

httplib::Server* the_server = nullptr;
void on_signal(int) {
    if (the_server != nullptr) the_server->stop();
}

std::string client_ip(const httplib::Request& req, const Options& o) {
    if (o.trusted_proxies.count(req.remote_addr) != 0 && req.has_header("X-Forwarded-For")) {
        std::string xff = req.get_header_value("X-Forwarded-For");
        size_t comma = xff.find(',');
        std::string first = xff.substr(0, comma);
        first.erase(0, first.find_first_not_of(' '));
        first.erase(first.find_last_not_of(' ') + 1);
        if (!first.empty()) return first;
    }
    return req.remote_addr;
}

void json_reply(httplib::Response& res, int status, const std::string& body) {
    res.status = status;
    res.set_content(body, "application/json");
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--db") o.db = v;
        else if (a == "--listen") {
            size_t colon = v.rfind(':');
            o.host = v.substr(0, colon);
            o.port = std::stoi(v.substr(colon + 1));
        } else if (a == "--cors-origin") o.cors_origins.insert(v);
        else if (a == "--trusted-proxy") o.trusted_proxies.insert(v);
        else if (a == "--max-batch-bytes") o.max_batch_bytes = std::stoul(v);
        else if (a == "--queue-bytes") o.queue_bytes = std::stoul(v);
        else if (a == "--writers") o.writers = std::max(1, std::stoi(v));
        else {
            std::cerr << "unknown option " << a << "\n";
            return 2;
        }
    }
    if (o.db.empty()) {
        std::cerr << "usage: cdp-collector --db CONNINFO [--listen HOST:PORT] [--cors-origin ORIGIN]... "
                     "[--trusted-proxy IP]... [--max-batch-bytes N] [--queue-bytes N] [--writers N]\n";
        return 2;
    }
    Writer writer(o);
    Stats stats;
    httplib::Server server;
    the_server = &server;
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    server.set_payload_max_length(o.max_batch_bytes * 4 + 1024);  // gzip inflates; checked again below
    // Answers go out at once: with Nagle's algorithm a reply written in two parts waits for the
    // client's delayed ACK (40 ms on Linux) before its second part leaves.
    server.set_tcp_nodelay(true);
    // SDKs keep a connection for many batches; httplib's default closes it after 5 requests.
    server.set_keep_alive_max_count(1000);
    // A request holds its thread until its events are committed: enough threads that many
    // requests wait together, and share one database call.
    server.new_task_queue = [] { return new httplib::ThreadPool(128); };

    auto cors = [&](const httplib::Request& req, httplib::Response& res) {
        std::string origin = req.get_header_value("Origin");
        if (!origin.empty() && (o.cors_origins.count(origin) != 0 || o.cors_origins.count("*") != 0)) {
            res.set_header("Access-Control-Allow-Origin", origin);
            res.set_header("Vary", "Origin");
            res.set_header("Access-Control-Allow-Credentials", "true");
        }
    };
    server.Options(R"(/.*)", [&](const httplib::Request& req, httplib::Response& res) {
        cors(req, res);
        res.set_header("Access-Control-Allow-Methods", "POST, OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Content-Type, Authorization, Content-Encoding");
        res.set_header("Access-Control-Max-Age", "86400");
        res.status = 204;
    });
    server.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
        json_reply(res, writer.healthy() ? 200 : 503, writer.healthy() ? R"({"status":"ok"})" : R"({"status":"database unavailable"})");
    });
    auto handle = [&](const httplib::Request& req, httplib::Response& res) {
        auto start = Clock::now();
        cors(req, res);
        auto endpoint = endpoint_of(req.path);
        if (!endpoint) return json_reply(res, 404, R"({"error":"unknown endpoint"})");
        std::string body = req.body;
        // Compressed bodies, however they are labelled (httplib inflates Content-Encoding: gzip itself).
        if (looks_gzipped(body)) {
            auto inflated = gunzip(body, o.max_batch_bytes + 1);
            if (!inflated) return json_reply(res, 400, R"({"error":"the body is not valid gzip, or too large inflated"})");
            body = std::move(*inflated);
        }
        if (body.size() > o.max_batch_bytes) return json_reply(res, 413, R"({"error":"the batch is over the size limit"})");
        Prepared p = prepare(body, *endpoint, client_ip(req, o));
        std::string key;
        if (auto user = basic_auth_user(req.get_header_value("Authorization"))) key = *user;
        if (key.empty()) key = p.write_key;
        if (key.empty() && req.has_param("writeKey")) key = req.get_param_value("writeKey");
        if (key.empty()) return json_reply(res, 401, R"({"error":"no write key"})");
        std::optional<int> ws;
        try {
            ws = writer.workspace_of(key);
        } catch (const std::exception&) {
            res.set_header("Retry-After", "5");
            return json_reply(res, 503, R"({"error":"database unavailable"})");
        }
        if (!ws) return json_reply(res, 401, R"({"error":"unknown write key"})");
        if (p.status != 200) return json_reply(res, p.status, "{\"error\":\"" + p.error + "\"}");
        auto pending = std::make_shared<Pending>();
        pending->workspace = *ws;
        pending->received_at = std::chrono::system_clock::now();
        for (auto& i : p.items) pending->bytes += i.size();
        pending->items = std::move(p.items);
        std::future<bool> stored = pending->stored.get_future();
        if (pending->items.empty()) return json_reply(res, 200, R"({"success":true})");
        if (!writer.push(pending)) {
            std::lock_guard<std::mutex> g(stats.mu);
            ++stats.refused;
            res.set_header("Retry-After", "1");
            return json_reply(res, 429, R"({"error":"busy, retry"})");
        }
        bool ok = stored.get();
        {
            std::lock_guard<std::mutex> g(stats.mu);
            ++stats.requests;
            if (ok) stats.events += static_cast<long>(pending->items.size());
            else ++stats.db_errors;
            stats.latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        }
        if (!ok) {
            res.set_header("Retry-After", "2");
            return json_reply(res, 503, R"({"error":"not stored: the database is unavailable, retry"})");
        }
        json_reply(res, 200, R"({"success":true})");
    };
    for (const char* path : {"/v1/batch", "/v1/b", "/beacon/v1/batch", "/v1/track", "/v1/identify", "/v1/page", "/v1/screen",
                             "/v1/group", "/v1/alias", "/v1/t", "/v1/i", "/v1/p", "/v1/s", "/v1/g", "/v1/a"})
        server.Post(path, handle);

    // One structured line a minute.
    std::atomic<bool> done{false};
    std::thread logger([&] {
        auto next = Clock::now() + std::chrono::minutes(1);
        while (!done) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            if (Clock::now() < next) continue;
            next += std::chrono::minutes(1);
            std::lock_guard<std::mutex> g(stats.mu);
            auto& l = stats.latency_ms;
            std::sort(l.begin(), l.end());
            double p50 = l.empty() ? 0 : l[l.size() / 2], p99 = l.empty() ? 0 : l[std::min(l.size() - 1, l.size() * 99 / 100)];
            std::fprintf(stderr,
                         "{\"level\":\"info\",\"requests\":%ld,\"events\":%ld,\"refused\":%ld,\"db_errors\":%ld,"
                         "\"p50_ms\":%.1f,\"p99_ms\":%.1f}\n",
                         stats.requests, stats.events, stats.refused, stats.db_errors, p50, p99);
            stats.requests = stats.events = stats.refused = stats.db_errors = 0;
            l.clear();
        }
    });
    std::fprintf(stderr, "{\"level\":\"info\",\"msg\":\"listening\",\"host\":\"%s\",\"port\":%d}\n", o.host.c_str(), o.port);
    bool listened = server.listen(o.host, o.port);
    writer.stop();  // drains what was accepted before answering stopped
    done = true;
    logger.join();
    std::fprintf(stderr, "{\"level\":\"info\",\"msg\":\"stopped\"}\n");
    return listened ? 0 : 1;
}
