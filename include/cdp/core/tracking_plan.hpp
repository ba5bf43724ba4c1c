// Tracking plans: what each event may carry, checked at ingest. A plan per event name (exact
// casing) holds a JSON-Schema subset for its properties and its traits:
//   type (string, number, integer, boolean, object, array, null, or a list of them), required,
//   properties, additionalProperties (false: no other keys), enum, pattern (RE2, anywhere in
//   the string, as JSON Schema), minimum, maximum, minLength, maxLength, items.
// Violations use Segment Protocols' types: Unplanned-Event, Required-Missing, Datatype-Mismatch,
// Additional-Properties, plus Enum-Mismatch, Pattern-Mismatch, Out-Of-Range and Naming-Convention,
// each with the JSON path it is about.
#pragma once
#include "cdp/core/pure.hpp"

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cdp/core/event.hpp"
#include "cdp/core/json.hpp"

namespace cdp {

struct Violation {
    std::string type;     // Required-Missing, ...
    std::string path;     // $.properties.price
    std::string message;
};

// Event naming conventions: "Object Action" in Title Case ("Product Viewed"), or snake_case.
enum class NamingConvention { None, TitleCaseObjectAction, SnakeCase };

class TrackingPlan {
public:
    TrackingPlan();
    ~TrackingPlan();
    TrackingPlan(TrackingPlan&&) noexcept;
    TrackingPlan& operator=(TrackingPlan&&) noexcept;

    // Adds the schema of one event ({"properties": schema, "traits": schema}); throws
    // Error(InvalidParameter) naming what in the schema is wrong.
    void add_event(std::string_view event, std::string_view schema_json);
    void set_naming(NamingConvention c) { naming_ = c; }
    // Whether events the plan does not name are violations (Unplanned-Event).
    void set_unplanned_is_violation(bool v) { unplanned_is_violation_ = v; }
    bool empty() const;

    // The violations of one event (track events by their event name, pages and screens by their
    // name; identify and group calls by their type).
    std::vector<Violation> check(const Event& e) const;

    struct Schema;  // one node of the schema subset (tracking_plan.cpp)

private:
    std::map<std::string, std::unique_ptr<Schema>, std::less<>> events_;  // per event: a schema of the whole event
    NamingConvention naming_ = NamingConvention::None;
    bool unplanned_is_violation_ = false;
};

// JSON text of violations: [{"type": ..., "path": ..., "message": ...}, ...].
std::string violations_json(const std::vector<Violation>& v);

}  // namespace cdp
