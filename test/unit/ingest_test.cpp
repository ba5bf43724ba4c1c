#include "cdp/core/ingest.hpp"

#include <gtest/gtest.h>

using namespace cdp;

namespace {

IngestOptions options() {
    IngestOptions o;
    o.received_at = *parse_iso8601("2026-11-29T12:00:00Z");
    o.internal_domains = {"shop.example"};
    return o;
}

const Rejection* rejection_for(const IngestBatch& b, size_t index) {
    for (const Rejection& r : b.rejections)
        if (r.item_index == index) return &r;
    return nullptr;
}

}  // namespace

TEST(Ingest, SingleTrackEvent) {
    IngestBatch b;
    b.parse(R"({"type":"track","event":"Product Viewed","userId":"u1","messageId":"m1",
                "properties":{"sku":"A1","price":19.99},"timestamp":"2026-11-29T11:59:00Z"})",
            options());
    ASSERT_TRUE(b.rejections.empty());
    ASSERT_EQ(b.events.size(), 1u);
    const Event& e = b.events[0];
    EXPECT_EQ(e.type, EventType::Track);
    EXPECT_EQ(e.event, "Product Viewed");
    EXPECT_EQ(e.user_id, "u1");
    EXPECT_EQ(e.message_id, "m1");
    ASSERT_NE(e.properties, nullptr);
    EXPECT_EQ((*e.properties)["sku"].GetString(), std::string("A1"));
    EXPECT_EQ(format_iso8601(e.timestamp), "2026-11-29T11:59:00.000000Z");
    EXPECT_TRUE(e.has_original_timestamp);
    EXPECT_FALSE(e.has_sent_at);
}

TEST(Ingest, BatchEnvelopeMergesContextAndIntegrations) {
    IngestBatch b;
    b.parse(R"({"batch":[
                  {"type":"page","anonymousId":"a1","messageId":"p1","context":{"locale":"de-DE"}},
                  {"type":"track","event":"Signed Up","anonymousId":"a1","messageId":"t1","integrations":{"All":false}}],
                "context":{"locale":"en-US","library":{"name":"analytics-node"}},
                "integrations":{"All":true,"Mixpanel":false}})",
            options());
    ASSERT_EQ(b.events.size(), 2u);
    EXPECT_EQ(b.events[0].locale, "de-DE");  // the item's own context wins
    EXPECT_EQ(b.events[1].locale, "en-US");
    EXPECT_STREQ((*b.events[0].context)["library"]["name"].GetString(), "analytics-node");
    ASSERT_NE(b.events[1].extra, nullptr);
    EXPECT_FALSE((*b.events[1].extra)["integrations"]["All"].GetBool());
    EXPECT_TRUE((*b.events[1].extra)["integrations"]["Mixpanel"].IsBool());
}

TEST(Ingest, ArrayWithBadItemsKeepsTheGoodOnes) {
    IngestBatch b;
    b.parse(R"([
      {"type":"track","event":"A","userId":"u","messageId":"1"},
      42,
      {"type":"track","userId":"u","messageId":"2"},
      {"type":"identify","messageId":"3"},
      {"type":"explode","userId":"u","messageId":"4"},
      {"type":"alias","userId":"u","messageId":"5"},
      {"type":"group","userId":"u","messageId":"6"},
      {"type":"track","event":"B","anonymousId":"x","messageId":"7","timestamp":"last tuesday"},
      {"type":"track","event":"C","anonymousId":"x","messageId":"8","properties":[1,2]},
      {"type":"track","event":"D","anonymousId":"x","messageId":"9","properties":{"k":"a\u0000b"}},
      {"type":"screen","name":"Home","userId":"u","messageId":"10"}
    ])", options());
    EXPECT_EQ(b.items, 11u);
    ASSERT_EQ(b.events.size(), 2u);
    EXPECT_EQ(b.events[0].message_id, "1");
    EXPECT_EQ(b.events[1].name, "Home");
    ASSERT_EQ(b.rejections.size(), 9u);
    EXPECT_STREQ(rejection_for(b, 1)->reason, reason::kNotAnObject);
    EXPECT_EQ(rejection_for(b, 1)->raw, "42");
    EXPECT_STREQ(rejection_for(b, 2)->reason, reason::kMissingField);
    EXPECT_STREQ(rejection_for(b, 3)->reason, reason::kMissingIdentity);
    EXPECT_STREQ(rejection_for(b, 4)->reason, reason::kInvalidType);
    EXPECT_STREQ(rejection_for(b, 5)->reason, reason::kMissingField);
    EXPECT_STREQ(rejection_for(b, 6)->reason, reason::kMissingField);
    EXPECT_STREQ(rejection_for(b, 7)->reason, reason::kInvalidTimestamp);
    EXPECT_STREQ(rejection_for(b, 8)->reason, reason::kInvalidField);
    EXPECT_STREQ(rejection_for(b, 9)->reason, reason::kNulByte);
    EXPECT_EQ(rejection_for(b, 4)->message_id, "4");
    // The raw text is the item exactly as sent.
    EXPECT_EQ(rejection_for(b, 3)->raw, R"({"type":"identify","messageId":"3"})");
}

TEST(Ingest, InvalidJsonRejectsTheWholePayload) {
    IngestBatch b;
    b.parse(R"([{"type":"track","event":"A","userId":"u"}, {oops}])", options());
    EXPECT_TRUE(b.events.empty());
    ASSERT_EQ(b.rejections.size(), 1u);
    EXPECT_TRUE(b.rejections[0].whole_payload);
    EXPECT_STREQ(b.rejections[0].reason, reason::kInvalidJson);
    EXPECT_NE(b.rejections[0].detail.find("at byte"), std::string::npos);
}

TEST(Ingest, InvalidUtf8IsRejectedAndStoredReadably) {
    IngestBatch b;
    b.parse("{\"type\":\"track\",\"event\":\"\xff\",\"userId\":\"u\"}", options());
    ASSERT_EQ(b.rejections.size(), 1u);
    EXPECT_STREQ(b.rejections[0].reason, reason::kInvalidUtf8);
    EXPECT_NE(b.rejections[0].raw.find("\xEF\xBF\xBD"), std::string::npos);
}

TEST(Ingest, SizeLimits) {
    IngestOptions o = options();
    std::string big(40 * 1024, 'x');
    IngestBatch b;
    b.parse(R"([{"type":"track","event":"Big","userId":"u","messageId":"b","properties":{"blob":")" + big +
                R"("}},{"type":"track","event":"Small","userId":"u","messageId":"s"}])",
            o);
    ASSERT_EQ(b.events.size(), 1u);
    EXPECT_EQ(b.events[0].event, "Small");
    ASSERT_EQ(b.rejections.size(), 1u);
    EXPECT_STREQ(b.rejections[0].reason, reason::kSizeViolation);
    EXPECT_EQ(b.rejections[0].message_id, "b");

    o.limits.max_batch_bytes = 60;
    IngestBatch whole;
    whole.parse(R"({"batch":[{"type":"track","event":"A","userId":"u"},{"type":"track","event":"A","userId":"u"}]})",
                o);
    ASSERT_EQ(whole.rejections.size(), 1u);
    EXPECT_TRUE(whole.rejections[0].whole_payload);
    EXPECT_STREQ(whole.rejections[0].reason, reason::kSizeViolation);
}

TEST(Ingest, DeepNestingIsRejected) {
    std::string deep;
    for (int i = 0; i < 100; ++i) deep += "{\"a\":";
    deep += "1";
    for (int i = 0; i < 100; ++i) deep += "}";
    IngestBatch b;
    b.parse(R"({"type":"track","event":"Deep","userId":"u","properties":)" + deep + "}", options());
    ASSERT_EQ(b.rejections.size(), 1u);
    EXPECT_STREQ(b.rejections[0].reason, reason::kTooDeep);
}

TEST(Ingest, DuplicatesInsideOnePayloadAreCountedOnce) {
    IngestBatch b;
    b.parse(R"([{"type":"track","event":"A","userId":"u","messageId":"same"},
                {"type":"track","event":"B","userId":"u","messageId":"same"},
                {"type":"track","event":"C","userId":"u","messageId":"other"}])",
            options());
    ASSERT_EQ(b.events.size(), 2u);
    EXPECT_EQ(b.events[0].event, "A");
    EXPECT_EQ(b.duplicates_in_payload, 1u);
}

TEST(Ingest, MissingMessageIdIsDerivedFromTheBytes) {
    IngestBatch a, b;
    a.parse(R"({"type":"track","event":"A","userId":"u"})", options());
    b.parse(R"({"type":"track","event":"A","userId":"u"})", options());
    ASSERT_EQ(a.events.size(), 1u);
    EXPECT_EQ(a.events[0].message_id.rfind("generated:", 0), 0u);
    EXPECT_EQ(a.events[0].message_id, b.events[0].message_id);
}

TEST(Ingest, ClockSkewAndAbsurdTimes) {
    IngestBatch b;
    b.parse(R"([{"type":"track","event":"Skewed","userId":"u","messageId":"1",
                 "timestamp":"2026-11-29T10:59:50Z","sentAt":"2026-11-29T11:00:00Z"},
                {"type":"track","event":"Future","userId":"u","messageId":"2","timestamp":"2031-01-01T00:00:00Z"},
                {"type":"track","event":"Ancient","userId":"u","messageId":"3","timestamp":"0001-01-01T00:00:00Z"},
                {"type":"track","event":"NoTime","userId":"u","messageId":"4"}])",
            options());
    ASSERT_EQ(b.events.size(), 2u);
    EXPECT_EQ(format_iso8601(b.events[0].timestamp), "2026-11-29T11:59:50.000000Z");
    EXPECT_EQ(format_iso8601(b.events[0].original_timestamp), "2026-11-29T10:59:50.000000Z");
    EXPECT_EQ(format_iso8601(b.events[1].timestamp), "2026-11-29T12:00:00.000000Z");
    EXPECT_FALSE(b.events[1].has_original_timestamp);
    EXPECT_EQ(b.rejections.size(), 2u);
    for (const Rejection& r : b.rejections) EXPECT_STREQ(r.reason, reason::kInvalidTimestamp);
}

TEST(Ingest, PageCampaignAndReferrer) {
    IngestBatch b;
    b.parse(R"({"type":"page","anonymousId":"a","messageId":"p","name":"Eco Shoes",
               "properties":{"url":"https://www.shop.example/p/eco?utm_source=newsletter&utm_medium=email&utm_campaign=spring+sale",
                             "referrer":"https://www.google.de/search?q=eco"},
               "context":{"ip":"198.51.100.23","locale":"en-GB"}})",
            options());
    ASSERT_EQ(b.events.size(), 1u);
    const Event& e = b.events[0];
    EXPECT_EQ(e.page_path, "/p/eco");
    EXPECT_EQ(e.page_host, "www.shop.example");
    EXPECT_EQ(e.utm_source, "newsletter");
    EXPECT_EQ(e.utm_medium, "email");
    EXPECT_EQ(e.utm_campaign, "spring sale");
    EXPECT_EQ(e.referrer_host, "www.google.de");
    EXPECT_EQ(e.referrer_medium, "search");
    EXPECT_EQ(e.ip, "198.51.100.0");
    EXPECT_EQ(e.name, "Eco Shoes");
}

TEST(Ingest, ContextCampaignWinsOverTheUrl) {
    IngestBatch b;
    b.parse(R"({"type":"track","event":"X","anonymousId":"a","context":{
                 "campaign":{"source":"fb","medium":"cpc","name":"retarget","term":"shoes","content":"v2"},
                 "page":{"url":"https://shop.example/?utm_source=other"}}})",
            options());
    ASSERT_EQ(b.events.size(), 1u);
    EXPECT_EQ(b.events[0].utm_source, "fb");
    EXPECT_EQ(b.events[0].utm_content, "v2");
}

TEST(Ingest, ExtraKeepsUnknownTopLevelKeysButNotTheWriteKey) {
    IngestBatch b;
    b.parse(R"({"type":"track","event":"X","userId":7,"writeKey":"secret","channel":"server","version":2})", options());
    ASSERT_EQ(b.events.size(), 1u);
    EXPECT_EQ(b.events[0].user_id, "7");
    ASSERT_NE(b.events[0].extra, nullptr);
    EXPECT_TRUE(b.events[0].extra->HasMember("channel"));
    EXPECT_FALSE(b.events[0].extra->HasMember("writeKey"));
}

TEST(Ingest, IdentifierOfTheWrongTypeIsRejected) {
    IngestBatch b;
    b.parse(R"({"type":"identify","userId":{"id":1}})", options());
    ASSERT_EQ(b.rejections.size(), 1u);
    EXPECT_STREQ(b.rejections[0].reason, reason::kInvalidField);
}

TEST(ItemSpans, FindsItemsWhateverTheLayout) {
    auto spans = payload_item_spans(R"( { "context" : {"a":"]"}, "batch" : [ {"x":"}"} , 1, "s" ] } )");
    ASSERT_EQ(spans.size(), 3u);
    EXPECT_EQ(spans[0], R"({"x":"}"})");
    EXPECT_EQ(spans[1], "1");
    EXPECT_EQ(spans[2], R"("s")");
    EXPECT_EQ(payload_item_spans(R"({"a":"\"batch\""})").size(), 1u);
    EXPECT_EQ(payload_item_spans("[]").size(), 0u);
    EXPECT_EQ(payload_item_spans(R"(["a\\", "b\"]"])")[1], R"("b\"]")");  // escaped quotes and backslashes
}

TEST(ItemSpans, MeasuresNesting) {
    int depth = 0;
    payload_item_spans(R"([{"a":[1,{"b":"]]]"}]}, 2])", &depth);
    EXPECT_EQ(depth, 4);
    payload_item_spans(R"({"context":{"x":[[]]},"batch":[{"p":{}}]})", &depth);
    EXPECT_EQ(depth, 4);
    payload_item_spans(R"({"type":"track"})", &depth);
    EXPECT_EQ(depth, 1);
}

TEST(Ingest, VeryDeepPayloadsParseWithoutRecursion) {
    std::string deep = "[";
    for (int i = 0; i < 100000; ++i) deep += "[";
    for (int i = 0; i < 100000; ++i) deep += "]";
    deep += "]";
    IngestBatch b;
    IngestOptions o = options();
    o.limits.max_batch_bytes = 1 << 20;
    b.parse(deep, o);
    ASSERT_EQ(b.rejections.size(), 1u);
    EXPECT_STREQ(b.rejections[0].reason, reason::kNotAnObject);
}

TEST(Ingest, RawNulByteRejectsTheWholePayload) {
    IngestBatch b;
    b.parse(std::string_view("{\"type\":\"track\",\"event\":\"A\",\"userId\":\"u\"}\0[1,2", 46), options());
    EXPECT_TRUE(b.events.empty());
    ASSERT_EQ(b.rejections.size(), 1u);
    EXPECT_TRUE(b.rejections[0].whole_payload);
    EXPECT_STREQ(b.rejections[0].reason, reason::kNulByte);
}

TEST(Ingest, IpPolicyHoldsForTheStoredContext) {
    const char* payload = R"([
        {"type":"track","event":"E","anonymousId":"a","messageId":"v4","context":{"ip":"203.0.113.77","locale":"de"}},
        {"type":"track","event":"E","anonymousId":"a","messageId":"twice","context":{"ip":"203.0.113.77","ip":"198.51.100.9"}},
        {"type":"track","event":"E","anonymousId":"a","messageId":"junk","context":{"ip":"localhost; DROP TABLE x"}}])";
    auto context_ips = [](const Event& e) {
        std::string out;
        for (auto it = e.context->MemberBegin(); it != e.context->MemberEnd(); ++it)
            if (std::string(it->name.GetString()) == "ip") out += std::string(it->value.GetString()) + ";";
        return out;
    };
    IngestOptions o = options();
    o.ip_policy = IpPolicy::Truncate;
    IngestBatch truncated;
    truncated.parse(payload, o);
    ASSERT_EQ(truncated.events.size(), 3u);
    EXPECT_EQ(truncated.events[0].ip, "203.0.113.0");
    EXPECT_EQ(context_ips(truncated.events[0]), "203.0.113.0;");
    EXPECT_STREQ((*truncated.events[0].context)["locale"].GetString(), "de");  // the rest stays
    EXPECT_EQ(context_ips(truncated.events[1]), "203.0.113.0;203.0.113.0;");  // every copy of the key
    EXPECT_EQ(context_ips(truncated.events[2]), "");  // not an address: nothing to keep

    o.ip_policy = IpPolicy::Drop;
    IngestBatch dropped;
    dropped.parse(payload, o);
    for (const Event& e : dropped.events) {
        EXPECT_EQ(e.ip, "");
        EXPECT_EQ(context_ips(e), "") << e.message_id;
    }

    o.ip_policy = IpPolicy::Full;
    IngestBatch full;
    full.parse(payload, o);
    EXPECT_EQ(context_ips(full.events[0]), "203.0.113.77;");
    EXPECT_EQ(context_ips(full.events[2]), "localhost; DROP TABLE x;");  // as sent; the ip column stays empty
    EXPECT_EQ(full.events[2].ip, "");
}

// A batch object is reused for payload after payload (one per backend): each parse sees only
// its own payload, also after one whose document outgrew the pool's first buffer.
TEST(Ingest, ReusedBatchForgetsThePreviousPayload) {
    IngestOptions o = options();
    o.limits.max_batch_bytes = 16 << 20;
    std::string big = "[";
    for (int i = 0; i < 4000; ++i) {
        if (i > 0) big += ",";
        big += R"({"type":"track","event":"E)" + std::to_string(i) + R"(","userId":"u)" + std::to_string(i) +
               R"(","messageId":"m)" + std::to_string(i) + R"(","properties":{"a":[1,2,3],"b":{"c":"d"}}})";
    }
    big += R"(,{"type":"bogus","userId":"u"}])";
    IngestBatch b;
    b.parse(big, o);
    ASSERT_EQ(b.events.size(), 4000u);
    ASSERT_EQ(b.rejections.size(), 1u);
    EXPECT_EQ(b.events[3999].event, "E3999");

    b.parse(R"([{"type":"page","anonymousId":"a9","messageId":"p9","properties":{"path":"/x"}}])", o);
    ASSERT_EQ(b.events.size(), 1u);
    EXPECT_TRUE(b.rejections.empty());
    EXPECT_EQ(b.items, 1u);
    EXPECT_EQ(b.events[0].anonymous_id, "a9");
    EXPECT_STREQ((*b.events[0].properties)["path"].GetString(), "/x");

    b.parse("{oops", o);
    EXPECT_TRUE(b.events.empty());
    ASSERT_EQ(b.rejections.size(), 1u);
    EXPECT_STREQ(b.rejections[0].reason, reason::kInvalidJson);
}

// The dedup key is scoped: the same messageId in another workspace is another event.
TEST(Ingest, MessageHashIsScopedByDedupScope) {
    const char* payload = R"({"type":"track","event":"A","userId":"u","messageId":"m-1"})";
    IngestOptions o = options();
    IngestBatch a, b, c;
    o.dedup_scope = 1;
    a.parse(payload, o);
    b.parse(payload, o);
    o.dedup_scope = 2;
    c.parse(payload, o);
    ASSERT_EQ(a.events.size(), 1u);
    ASSERT_EQ(c.events.size(), 1u);
    EXPECT_EQ(a.events[0].message_hash, b.events[0].message_hash);
    EXPECT_NE(a.events[0].message_hash, c.events[0].message_hash);
}
