import Foundation
import KlingCore
import Subprocess
import Synchronization
import SystemPackage

/// Runs ffmpeg, ffprobe and espeak-ng through swift-subprocess (the video's ffmpeg processes run in ``FFmpegPool``).
///
/// Cancelling the calling task tears the child down (SIGTERM, then SIGKILL after 2 s), so no tool outlives a cancelled
/// render. Standard error is streamed and only its tail is kept, so a chatty tool can never overflow a capture limit.
enum ProcessRunner {
    /// What a finished process said.
    struct Outcome: Sendable {
        var succeeded: Bool
        var standardOutput: String
        /// The last lines of standard error.
        var standardError: String
    }

    static let platformOptions: PlatformOptions = {
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(2))]
        return options
    }()

    /// Lines of standard error kept for failure messages.
    static let keptErrorLines = 40

    /// Absolute paths of tools named without one, looked up on `PATH` once.
    private static let resolvedPaths = Mutex<[String: FilePath]>([:])

    /// The tool to spawn: a name is resolved on `PATH` once and remembered. Spawning by name makes swift-subprocess
    /// try each `PATH` directory with its own fork, about 5 ms each on this machine: with ffmpeg in the ninth of
    /// twelve directories, 0.05 s before every ffmpeg and espeak-ng run.
    static func executable(_ tool: String) async -> Executable {
        if tool.contains("/") { return .path(FilePath(tool)) }
        if let known = resolvedPaths.withLock({ $0[tool] }) { return .path(known) }
        // Not found: spawning by name then reports the tool as missing.
        guard let path = try? await Executable.name(tool).resolveExecutablePath(in: .inherit) else { return .name(tool) }
        resolvedPaths.withLock { $0[tool] = path }
        return .path(path)
    }

    /// Runs a command to completion, collecting its standard output (up to `outputLimit` bytes) and its error tail.
    static func run(
        _ executable: String, _ arguments: [String], in directory: URL? = nil, outputLimit: Int = 1 << 20
    ) async throws -> Outcome {
        let collected = Mutex("")
        let (succeeded, errors) = try await stream(executable, arguments, in: directory) { line in
            collected.withLock { if $0.utf8.count < outputLimit { $0 += line + "\n" } }
        }
        return Outcome(succeeded: succeeded, standardOutput: collected.withLock { $0 }, standardError: errors)
    }

    /// ffmpeg options that report progress on standard output (read with ``frameNumber(_:)``).
    static let progressArguments = ["-progress", "pipe:1", "-nostats", "-stats_period", "0.25"]

    /// The frame number in a line of ffmpeg's progress output, if the line reports one.
    static func frameNumber(_ line: String) -> Int? {
        guard line.hasPrefix("frame=") else { return nil }
        return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
    }

    /// Reads a running tool's output to its end: each trimmed standard output line goes to `onLine`; returns the last
    /// ``keptErrorLines`` lines of standard error.
    static func drain(
        _ standardOutput: SubprocessOutputSequence, _ standardError: SubprocessOutputSequence, onLine: @Sendable (String) async -> Void
    ) async throws -> String {
        async let errorTail: [String] = {
            var tail: [String] = []
            for try await line in standardError.strings() {
                tail.append(line)
                if tail.count > keptErrorLines { tail.removeFirst() }
            }
            return tail
        }()
        for try await line in standardOutput.strings() {
            await onLine(line.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return try await errorTail.joined(separator: "\n")
    }

    /// The last meaningful lines of a tool's error output, for failure messages.
    static func reason(_ standardError: String) -> String {
        let lines = standardError.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        let tail = lines.suffix(3).joined(separator: " | ")
        return tail.isEmpty ? "no error output" : String(tail.suffix(600))
    }

    /// Spawns the tool, hands each trimmed standard output line to `onLine`, and keeps the tail of standard error.
    private static func stream(
        _ executable: String, _ arguments: [String], in directory: URL?, onLine: @escaping @Sendable (String) async -> Void
    ) async throws -> (succeeded: Bool, errors: String) {
        let tool = URL(fileURLWithPath: executable).lastPathComponent
        do {
            let result = try await Subprocess.run(
                await Self.executable(executable),
                arguments: Arguments(arguments),
                workingDirectory: directory.map { FilePath($0.path) },
                platformOptions: platformOptions,
                input: .none, output: .sequence, error: .sequence
            ) { execution in
                try await drain(execution.standardOutput, execution.standardError, onLine: onLine)
            }
            return (result.terminationStatus.isSuccess, result.closureResult)
        } catch let error as SubprocessError {
            try Task.checkCancellation()
            throw EngineError.renderFailed("\(tool) could not be run: \(error)")
        }
    }
}
