/// Durable storage of accounts, keys, credits and tasks; the queue's single source of truth.
///
/// `TaskStore` is the composition of the focused stores, each in its own file; a service takes only the ones it uses
/// (the worker the queue, the deliverer the outbox, ...). Every implementation (SQLite, PostgreSQL) must pass the
/// same behaviour suite, grouped the same way.
public protocol TaskStore: AccountStore, LedgerStore, SwitchStore, TaskRecordStore, QueueStore, CallbackOutbox, RetentionStore,
    MonitoringStore
{}
