import Foundation
import KlingAPI
import KlingCore
import KlingPostgres
import KlingSQLite
import KlingTestSupport
import Logging
import Synchronization
import Testing

/// Figures read across backends (``MonitoringStore``).
extension TaskStoreBehaviourTests {
    @Test func ledgerTotalsAndAccountListingMatchAcrossBackends() async throws {
        try await withStores { store in
            let bob = try await store.createAccount(name: "bob", credits: 50, now: 2)
            let alice = try await store.createAccount(name: "alice", credits: 100, now: 1)
            #expect(try await store.accounts().map(\.name) == ["alice", "bob"])
            #expect(try await store.account(named: "bob")?.id == bob.id)
            #expect(try await store.addCredits(accountID: alice.id, amount: -30, note: "fix", now: 3) == 70)
            try await pricedTask(store, account: bob, id: "t", credits: 20)
            let ledger = try await store.ledger(accountID: alice.id)
            #expect(ledger.map(\.kind) == [.topUp, .adjustment] && ledger.last?.note == "fix")
            let totals = try await store.operationalStats(now: 10).ledgerTotals
            #expect(totals == [.topUp: 150, .adjustment: -30, .charge: -20])
            await #expect(throws: StoreError.self) { try await store.setLimits(accountID: "acct_nope", limits: LimitOverrides()) }
            await #expect(throws: StoreError.self) { _ = try await store.balance(accountID: "acct_nope") }
        }
    }

    /// Workers of two processes drain one queue of priced tasks of several accounts, failing every third: each task
    /// ends once, refunds match the failures, and every balance is its ledger's sum.
}
