#include "cdp/core/tracking_plan.hpp"

#include <gtest/gtest.h>

#include <deque>

#include "cdp/core/error.hpp"

using namespace cdp;

namespace {
struct Docs {
    std::deque<rapidjson::Document> docs;
    const rapidjson::Value* json(const char* text) {
        docs.emplace_back();
        std::string padded(text);
        padded.append(16, '\0');
        docs.back().Parse(padded.c_str());
        return &docs.back();
    }
};
std::vector<std::string> types_of(const std::vector<Violation>& v) {
    std::vector<std::string> out;
    for (const auto& x : v) out.push_back(x.type + " " + x.path);
    return out;
}
}  // namespace

TEST(TrackingPlan, ChecksPropertiesAgainstTheSchema) {
    TrackingPlan plan;
    plan.add_event("Order Completed", R"({"properties": {"type": "object", "required": ["order_id", "total"],
        "additionalProperties": false, "properties": {"order_id": {"type": "string", "pattern": "^o-[0-9]+$"},
        "total": {"type": "number", "minimum": 0}, "currency": {"enum": ["USD", "EUR"]},
        "items": {"type": "array", "items": {"type": "object", "required": ["sku"]}}}}})");
    Docs d;
    Event e;
    e.type = EventType::Track;
    e.event = "Order Completed";
    e.properties = d.json(R"({"order_id": "o-12", "total": 10.5, "currency": "USD", "items": [{"sku": "a"}]})");
    EXPECT_TRUE(plan.check(e).empty());
    e.properties = d.json(R"({"order_id": "x-12", "total": "10", "currency": "GBP", "coupon": "A", "items": [{"qty": 1}]})");
    EXPECT_EQ(types_of(plan.check(e)),
              (std::vector<std::string>{"Pattern-Mismatch $.properties.order_id", "Datatype-Mismatch $.properties.total",
                                        "Enum-Mismatch $.properties.currency", "Additional-Properties $.properties.coupon",
                                        "Required-Missing $.properties.items[0].sku"}));
    e.properties = d.json(R"({"total": -1})");
    EXPECT_EQ(types_of(plan.check(e)),
              (std::vector<std::string>{"Required-Missing $.properties.order_id", "Out-Of-Range $.properties.total"}));
    e.properties = nullptr;  // no properties at all: the required ones are missing
    EXPECT_EQ(plan.check(e).size(), 2u);
}

TEST(TrackingPlan, UnplannedEventsAndNaming) {
    TrackingPlan plan;
    plan.add_event("Product Viewed", R"({"properties": {"type": "object"}})");
    Event e;
    e.type = EventType::Track;
    e.event = "productViewed";
    EXPECT_TRUE(plan.check(e).empty());  // unplanned events are fine unless the plan says otherwise
    plan.set_unplanned_is_violation(true);
    plan.set_naming(NamingConvention::TitleCaseObjectAction);
    EXPECT_EQ(types_of(plan.check(e)), (std::vector<std::string>{"Naming-Convention $.event", "Unplanned-Event $.event"}));
    e.event = "Product Viewed";
    EXPECT_TRUE(plan.check(e).empty());
    e.event = "Product  Viewed";
    EXPECT_EQ(plan.check(e).size(), 2u);
    plan.set_naming(NamingConvention::SnakeCase);
    e.event = "product_viewed";
    EXPECT_EQ(types_of(plan.check(e)), (std::vector<std::string>{"Unplanned-Event $.event"}));
}

TEST(TrackingPlan, BadSchemasSayWhere) {
    TrackingPlan plan;
    for (const char* bad : {R"([1])", R"({"props": {}})", R"({"properties": {"type": "text"}})",
                            R"({"properties": {"properties": {"a": {"pattern": "("}}}})",
                            R"({"properties": {"oneOf": []}})", R"({"properties": {"required": "a"}})"}) {
        try {
            plan.add_event("E", bad);
            ADD_FAILURE() << bad;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
            EXPECT_NE(e.detail().find("At $"), std::string::npos) << e.detail();
            EXPECT_FALSE(e.hint().empty());
        }
    }
}
