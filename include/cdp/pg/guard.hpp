// The C++/PostgreSQL wall (CPP_IN_POSTGRES.md rules 2-5): C++ runs only inside guarded(), whose
// exceptions become ereport(ERROR) after every C++ frame is gone; C++ objects that must live
// across PostgreSQL calls are owned by a memory context, so an error longjmp frees them too.
#pragma once

#include <new>
#include <stdexcept>

#include "cdp/core/error.hpp"
#include "cdp/pg/postgres.hpp"

namespace cdp::pg {

// An exception's report, copied into plain storage so the exception can be destroyed first.
struct CapturedError {
    int sqlstate;
    bool cancelled;
    char message[1024];
    char detail[2048];
    char hint[1024];
};

void capture(CapturedError& out, const cdp::Error& e) noexcept;
void capture(CapturedError& out, const std::bad_alloc& e) noexcept;
void capture(CapturedError& out, const std::exception& e) noexcept;
void capture_unknown(CapturedError& out) noexcept;

// Reports the captured error through ereport (a cancel goes through CHECK_FOR_INTERRUPTS).
[[noreturn]] void raise(const CapturedError& err);

// Runs C++ work; any exception is turned into a PostgreSQL error once the handler has exited.
// The body must not call PostgreSQL functions that can ereport.
template <typename F>
inline void guarded(F&& body) {
    CapturedError err;
    bool failed = false;
    try {
        body();
    } catch (const cdp::Error& e) {
        failed = true;
        capture(err, e);
    } catch (const std::bad_alloc& e) {
        failed = true;
        capture(err, e);
    } catch (const std::exception& e) {
        failed = true;
        capture(err, e);
    } catch (...) {
        failed = true;
        capture_unknown(err);
    }
    if (failed) raise(err);
}

// A C++ object owned by a memory context: deleted when the context is reset or deleted (which
// includes error cleanup), or earlier by release(). The C layer holds only this holder's pointer.
template <typename T>
struct ContextOwned {
    T* object;
    MemoryContextCallback callback;

    static void destroy(void* arg) {
        auto* self = static_cast<ContextOwned<T>*>(arg);
        delete self->object;
        self->object = nullptr;
    }

    // Deletes the object now; the context callback then finds nothing to do.
    void release() { destroy(this); }
};

// Creates a default-constructed T owned by the memory context.
template <typename T>
ContextOwned<T>* make_context_owned(MemoryContext context) {
    auto* holder = static_cast<ContextOwned<T>*>(MemoryContextAllocZero(context, sizeof(ContextOwned<T>)));
    guarded([&] { holder->object = new T(); });
    holder->callback.func = &ContextOwned<T>::destroy;
    holder->callback.arg = holder;
    MemoryContextRegisterResetCallback(context, &holder->callback);
    return holder;
}

}  // namespace cdp::pg
