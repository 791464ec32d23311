import ArgumentParser
import Foundation
import KlingKit

/// `kling status ID`: the task's state now.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a task's state, progress and result.")

    @Argument(help: "The task id.") var id: String
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let client = try connection.client()
        do throws(KlingError) {
            let task = try await client.task(id)
            var lines = ["task:     \(task.id)", "state:    \(task.state) (\(task.providerState))"]
            if let progress = task.progress { lines.append("progress: \(progress)%") }
            if let engine = task.engine { lines.append("engine:   \(engine)\(engine == "preview" ? " (not Kling output)" : "")") }
            if let credits = task.credits { lines.append("credits:  \(credits)") }
            for url in task.videoURLs { lines.append("video:    \(url)") }
            if let failure = task.failure {
                lines.append("failure:  \(failure.message)\(failure.code.map { " (code \($0))" } ?? "")")
            }
            lines.forEach(Terminal.output)
        } catch {
            throw ExitStatus.report(error, taskID: id)
        }
    }
}

/// `kling wait ID`: follows a task to its end.
struct WaitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Follow a task until it finishes (exit 0 succeeded, 1 failed, 4 timed out).")

    @Argument(help: "The task id.") var id: String
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let client = try connection.client()
        do {
            let task = try await follow(client, taskID: id)
            let status = reportFinished(task)
            guard status == 0 else { throw ExitCode(status) }
            Terminal.output(task.videoURL ?? task.id)
        } catch let error as KlingError {
            throw ExitStatus.report(error, taskID: id)
        }
    }
}

/// `kling download ID`: saves a finished task's video (resuming an interrupted download).
struct DownloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download", abstract: "Download a finished task's video (resumes an interrupted download).")

    @Argument(help: "The task id.") var id: String
    @Option(help: "Where to save the video (default TASK_ID.mp4).") var out: String?
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let client = try connection.client()
        do {
            let task = try await client.task(id)
            guard task.state == .succeeded else {
                if task.state == .failed { throw ExitCode(reportFinished(task)) }
                throw KlingError(
                    .api, message: "task \(id) is \(task.state), not finished; follow it with `kling wait \(id)` first", taskID: id)
            }
            try await save(task, client: client, out: out)
        } catch let error as KlingError {
            throw ExitStatus.report(error, taskID: id)
        }
    }
}

/// `kling credits`: the account's balance.
struct CreditsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "credits", abstract: "Show the account's credit balance.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let client = try connection.client()
        do throws(KlingError) {
            Terminal.output(String(try await client.credits()))
        } catch {
            throw ExitStatus.report(error)
        }
    }
}

/// `kling quote "prompt" ...`: what a video would cost, without creating it.
struct QuoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quote", abstract: "Price a video without creating it (same options as generate; files are not uploaded).")

    @OptionGroup var request: RequestOptions
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let client = try connection.client()
        do throws(KlingError) {
            let (draft, _) = try request.request()
            let quote = try await client.quote(draft)
            Terminal.output("credits:    \(quote.credits)")
            Terminal.output("balance:    \(quote.balance) (\(quote.affordable ? "affordable" : "NOT affordable: add credits first"))")
            Terminal.output(
                "breakdown:  \(quote.seconds) s x \(quote.creditsPerSecond) credits/s (\(quote.mode))\(quote.audio ? " x audio factor" : "")")
        } catch {
            throw ExitStatus.report(error)
        }
    }
}
