import ArgumentParser
import Foundation
import KlingCore
import KlingServer

struct Accounts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage accounts.", subcommands: [Create.self, List.self, Show.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an account with a starting grant of credits.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Account name") var name: String
        @Option(help: "Starting credits. Default: KLING_DEFAULT_CREDITS, or 10000") var credits: Int64?

        func run() async throws {
            let credits = try credits ?? EnvironmentSettings.current().defaultCredits
            let account = try await data.accountService().createAccount(name: name, credits: credits)
            print("created account \(account.name) (\(account.id)) with \(credits) credits")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts with their balances.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            let service = try await data.accountService()
            let defaults = try EnvironmentSettings.current().limits
            for account in try await service.accounts() {
                let summary = try await service.summary(accountName: account.name, defaultLimits: defaults)
                print("\(account.name)\t\(account.id)\t\(summary.balance) credits")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an account: balance, limits, keys and recent ledger entries.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Account name") var name: String

        func run() async throws {
            let service = try await data.accountService()
            let summary = try await service.summary(accountName: name, defaultLimits: try EnvironmentSettings.current().limits)
            let limits = summary.limits
            print("account  \(summary.account.name) (\(summary.account.id))")
            print("balance  \(summary.balance) credits")
            print(
                "limits   \(limits.createsPerWindow) creates per \(limits.createWindowSeconds) s, \(limits.queriesPerSecond) queries/s, "
                    + "\(limits.maxActiveTasks) active tasks (0 = unlimited rate)")
            for key in summary.keys { print("key      \(key.id)\t\(key.prefix)…\t\(key.revokedAt == nil ? "active" : "revoked")") }
            for entry in try await service.ledger(accountName: name).suffix(20) {
                print("ledger   #\(entry.id)\t\(entry.kind.rawValue)\t\(entry.amount)\t\(entry.taskID ?? "-")\t\(entry.note)")
            }
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage API keys.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue an API key; it is printed once, alone on the last line.")
        @OptionGroup var data: DataOptions
        @Option(help: "Account that owns the key") var account: String
        @Option(help: "api (a bearer API key, default) or jwt (a Kling access key / secret key pair)") var kind: String = "api"

        func run() async throws {
            switch kind {
            case "api":
                let (key, record) = try await data.accountService().createKey(accountName: account)
                print("created key \(record.id) for account \(account); store it now, it is not shown again:")
                print(key)
            case "jwt":
                let (accessKey, secretKey) = try await data.accountService().createJWTCredential(accountName: account)
                print("created a JWT key pair for account \(account); store the secret key now, it is not shown again:")
                print("access key: \(accessKey)")
                print("secret key: \(secretKey)")
            default:
                throw ValidationError("--kind must be api or jwt")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an account's keys (prefixes only).")
        @OptionGroup var data: DataOptions
        @Option(help: "Account") var account: String

        func run() async throws {
            for key in try await data.accountService().keys(accountName: account) {
                print("\(key.id)\t\(key.prefix)…\t\(key.revokedAt == nil ? "active" : "revoked")")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a key (by the id `keys list` shows); it stops working at once, also in a running server.")
        @OptionGroup var data: DataOptions
        @Option(help: "Account that owns the key") var account: String
        @Argument(help: "Key id (key_...)") var keyID: String

        func run() async throws {
            try await data.accountService().revokeKey(accountName: account, keyID: keyID)
            print("revoked key \(keyID) of account \(account)")
        }
    }
}

struct Credits: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage credit balances.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add credits to an account (a ledger entry); a negative amount corrects a balance down, never below 0.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Account name") var account: String
        @Argument(help: "Credits to add") var amount: Int64
        @Option(help: "Note kept in the ledger") var note: String = "credits add"

        func run() async throws {
            let balance = try await data.accountService().addCredits(accountName: account, amount: amount, note: note)
            print("account \(account) now has \(balance) credits")
        }
    }
}

struct Ledger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Inspect the credit ledger.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prove that every account's balance equals the sum of its ledger; exits 1 if any does not.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            let service = try await data.accountService()
            let mismatches = try await service.ledgerMismatches()
            for mismatch in mismatches {
                print("MISMATCH \(mismatch.accountName) (\(mismatch.accountID)): balance \(mismatch.balance), ledger sum \(mismatch.ledgerSum)")
            }
            guard mismatches.isEmpty else { throw ExitCode(1) }
            print("ok: \(try await service.accounts().count) accounts, every balance equals the sum of its ledger")
        }
    }
}

struct Limits: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage per-account limits.", subcommands: [Set.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Override an account's limits (0 creates or queries = no rate limit); takes effect at once.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Account name") var account: String
        @Option(help: "Creates per window, per key") var creates: Int?
        @Option(name: .customLong("create-window"), help: "Create window in seconds") var createWindow: Int?
        @Option(help: "Queries per second, per key") var queries: Int?
        @Option(name: .customLong("max-active"), help: "Queued plus running tasks at once") var maxActive: Int?

        func run() async throws {
            let overrides = LimitOverrides(
                createsPerWindow: creates, createWindowSeconds: createWindow, queriesPerSecond: queries, maxActiveTasks: maxActive)
            let account = try await data.accountService().setLimits(accountName: account, overrides)
            let limits = try EnvironmentSettings.current().limits.applying(account.limits)
            print(
                "account \(account.name): \(limits.createsPerWindow) creates per \(limits.createWindowSeconds) s, "
                    + "\(limits.queriesPerSecond) queries/s, \(limits.maxActiveTasks) active tasks")
        }
    }
}

struct Maintenance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn maintenance mode on or off (creates answer 455; queries still work); takes effect at once.")
    @OptionGroup var data: DataOptions
    @Argument(help: "on or off") var state: String

    func run() async throws {
        guard state == "on" || state == "off" else { throw ValidationError("say on or off") }
        try await data.accountService().setMaintenance(state == "on")
        print("maintenance \(state)")
    }
}

struct Features: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Switch request features on or off (a disabled feature answers 505); takes effect at once.",
        subcommands: [Enable.self, Disable.self, List.self])

    static func feature(_ name: String) throws -> ServiceSwitches.Feature {
        guard let feature = ServiceSwitches.Feature(rawValue: name) else {
            throw ValidationError("unknown feature \(name); one of: \(ServiceSwitches.Feature.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return feature
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a feature.")
        @OptionGroup var data: DataOptions
        @Argument(help: "4k, multi-shot, elements, audio or image-to-video") var feature: String

        func run() async throws {
            try await data.accountService().setFeature(try Features.feature(feature), enabled: true)
            print("feature \(feature) enabled")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a feature.")
        @OptionGroup var data: DataOptions
        @Argument(help: "4k, multi-shot, elements, audio or image-to-video") var feature: String

        func run() async throws {
            try await data.accountService().setFeature(try Features.feature(feature), enabled: false)
            print("feature \(feature) disabled")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List features and maintenance mode.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            let switches = try await data.accountService().switches()
            print("maintenance\t\(switches.maintenance ? "on" : "off")")
            for feature in ServiceSwitches.Feature.allCases {
                print("\(feature.rawValue)\t\(switches.disabledFeatures.contains(feature) ? "disabled" : "enabled")")
            }
        }
    }
}

struct Webhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage webhook signing secrets.", subcommands: [Secret.self])

    struct Secret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the account's current whsec_ secret; --rotate makes a new one (the old one keeps signing for 24 h).")
        @OptionGroup var data: DataOptions
        @Option(help: "Account") var account: String
        @Flag(help: "Make a new secret") var rotate = false

        func run() async throws {
            let store = try await data.openStore()
            let account = try await AccountService(store: store).account(named: account)
            let now = TaskWorker.nowMillis()
            let secrets =
                rotate
                ? try await store.rotateWebhookSecret(accountID: account.id, previousUntil: now + 86_400_000, now: now)
                : try await store.webhookSecrets(accountID: account.id, now: now)
            if secrets.count > 1 { print("previous secret (still signing for up to 24 h): \(secrets[1])") }
            print(secrets[0])
        }
    }
}

struct Callbacks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Inspect and re-send callbacks.", subcommands: [List.self, Resend.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a task's callbacks and their delivery attempts.")
        @OptionGroup var data: DataOptions
        @Option(help: "Task id") var task: String

        func run() async throws {
            let store = try await data.openStore()
            guard let record = try await store.task(id: task) else { throw ValidationError("no task \(task)") }
            for (callback, attempts) in try await store.callbacks(taskID: task, accountID: record.accountID) {
                print("\(callback.id)\t\(callback.state.rawValue)\t\(callback.attempts) attempts\t\(callback.url)")
                for attempt in attempts {
                    print("  #\(attempt.attempt)\t\(attempt.status.map(String.init) ?? "-")\t\(attempt.durationMillis) ms\t\(attempt.error ?? "ok")")
                }
            }
        }
    }

    struct Resend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a callback again now (by the msg_ id `callbacks list` shows).")
        @OptionGroup var data: DataOptions
        @Argument(help: "Callback id (msg_...)") var id: String

        func run() async throws {
            guard try await data.openStore().resendCallback(id: id, now: TaskWorker.nowMillis()) else {
                throw ValidationError("no callback \(id)")
            }
            print("callback \(id) queued for delivery")
        }
    }
}
