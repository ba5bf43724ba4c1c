// Included first by every core header: the core is plain C++17 and must never see PostgreSQL.
#pragma once

#ifdef POSTGRES_H
static_assert(false, "cdp core headers must not be compiled together with PostgreSQL headers");
#endif
