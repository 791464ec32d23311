import Foundation
import HTTPTypes
import Hummingbird
import KlingAPI
import KlingCore

/// The admin HTTP API under `/admin/v1`, guarded by `KLING_ADMIN_TOKEN` (Bearer): the same operations as the admin
/// commands. Not registered at all when no token is configured.
struct AdminRoutes {
    let accounts: AccountService
    let token: String
    let defaultLimits: AccountLimits
    let defaultCredits: Int64

    func register(on router: Router<KlingRequestContext>) {
        let group = router.group("admin/v1")
            .add(middleware: DialectErrorMiddleware<AdminDialect>())
            .add(middleware: AdminTokenMiddleware(token: token))
        group.get("accounts") { _, _ in try await listAccounts() }
        group.post("accounts") { request, context in try await createAccount(request, context) }
        group.get("accounts/:name") { _, context in try await summary(context) }
        group.get("accounts/:name/ledger") { _, context in
            AdminDialect.success(try await accounts.ledger(accountName: try name(context)))
        }
        group.post("accounts/:name/credits") { request, context in try await addCredits(request, context) }
        group.post("accounts/:name/keys") { _, context in
            let (key, record) = try await accounts.createKey(accountName: try name(context))
            return AdminDialect.success(CreatedKey(id: record.id, key: key))
        }
        group.delete("accounts/:name/keys/:id") { _, context in
            let id = try context.parameters.require("id")
            try await accounts.revokeKey(accountName: try name(context), keyID: id)
            return AdminDialect.success(["revoked": id])
        }
        group.put("accounts/:name/limits") { request, context in
            let overrides = try await body(LimitOverrides.self, request, context)
            let account = try await accounts.setLimits(accountName: try name(context), overrides)
            return AdminDialect.success(defaultLimits.applying(account.limits))
        }
        group.get("ledger/check") { _, _ in
            let mismatches = try await accounts.ledgerMismatches()
            return AdminDialect.success(LedgerCheck(ok: mismatches.isEmpty, mismatches: mismatches))
        }
        group.get("switches") { _, _ in AdminDialect.success(try await accounts.switches()) }
        group.put("maintenance") { request, context in
            let toggle = try await body(Toggle.self, request, context)
            try await accounts.setMaintenance(toggle.enabled)
            return AdminDialect.success(try await accounts.switches())
        }
        group.put("features/:feature") { request, context in
            let name = try context.parameters.require("feature")
            guard let feature = ServiceSwitches.Feature(rawValue: name) else {
                throw APIError.notFound("feature: no feature \(name); one of \(ServiceSwitches.Feature.allCases.map(\.rawValue))")
            }
            try await accounts.setFeature(feature, enabled: try await body(Toggle.self, request, context).enabled)
            return AdminDialect.success(try await accounts.switches())
        }
    }

    private struct CreatedKey: Encodable, Sendable { var id: String; var key: String }
    private struct LedgerCheck: Encodable, Sendable { var ok: Bool; var mismatches: [LedgerMismatch] }
    private struct Toggle: Decodable { var enabled: Bool }
    private struct NewAccount: Decodable { var name: String; var credits: Int64? }
    private struct CreditChange: Decodable { var amount: Int64; var note: String? }
    private struct AccountLine: Encodable, Sendable { var name: String; var id: String; var balance: Int64 }

    private func name(_ context: KlingRequestContext) throws -> String {
        try context.parameters.require("name")
    }

    private func listAccounts() async throws -> Response {
        var lines: [AccountLine] = []
        for account in try await accounts.accounts() {
            let summary = try await accounts.summary(accountName: account.name, defaultLimits: defaultLimits)
            lines.append(AccountLine(name: account.name, id: account.id, balance: summary.balance))
        }
        return AdminDialect.success(lines)
    }

    private func createAccount(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let new = try await body(NewAccount.self, request, context)
        let account = try await accounts.createAccount(name: new.name, credits: new.credits ?? defaultCredits)
        return AdminDialect.success(try await accounts.summary(accountName: account.name, defaultLimits: defaultLimits))
    }

    private func summary(_ context: KlingRequestContext) async throws -> Response {
        AdminDialect.success(try await accounts.summary(accountName: try name(context), defaultLimits: defaultLimits))
    }

    private func addCredits(_ request: Request, _ context: KlingRequestContext) async throws -> Response {
        let change = try await body(CreditChange.self, request, context)
        let balance = try await accounts.addCredits(accountName: try name(context), amount: change.amount, note: change.note ?? "admin API")
        return AdminDialect.success(["balance": balance])
    }

    private func body<T: Decodable>(_ type: T.Type, _ request: Request, _ context: KlingRequestContext) async throws -> T {
        let bytes = try await request.body.collect(upTo: context.maxUploadSize)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: bytes))
        } catch {
            throw APIError.validation("body: not the expected JSON object (\(error))")
        }
    }
}

/// The admin API's envelope: `{code, msg, data}` like the Market dialect, with the admin token as Bearer.
enum AdminDialect: Dialect {
    static let name = "admin"
    static let callbackField: String? = nil

    static func apiKey(from request: Request) -> String? { bearerToken(request) }

    static func errorBody(_ error: APIError) -> JSONValue {
        .object(["code": .number(Double(error.code)), "msg": .string(error.message), "data": .null])
    }

    static func success(_ data: some Encodable & Sendable) -> Response {
        JSONResponse.make(status: 200, body: MarketDialect.Envelope(code: 200, msg: "success", data: data))
    }
}

/// Lets a request through only with the configured admin token (compared in constant time).
struct AdminTokenMiddleware: RouterMiddleware {
    typealias Context = KlingRequestContext
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let presented = AdminDialect.apiKey(from: request), APIKeys.constantTimeEquals(presented, token) else {
            throw APIError.unauthorized("admin token missing or wrong")
        }
        return try await next(request, context)
    }
}
