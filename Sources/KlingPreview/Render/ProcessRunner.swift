import Foundation
import KlingCore
import Subprocess
import SystemPackage

/// Runs ffmpeg, ffprobe and espeak-ng through swift-subprocess; cancelling the calling task kills the process.
struct ProcessRunner: Sendable {
    /// What a finished process said.
    struct Outcome: Sendable {
        var succeeded: Bool
        var standardOutput: String
        var standardError: String
    }

    static let platformOptions: PlatformOptions = {
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(2))]
        return options
    }()

    /// Runs a command to completion, collecting its output.
    static func run(_ executable: String, _ arguments: [String], in directory: URL? = nil) async throws -> Outcome {
        let result = try await Subprocess.run(
            .name(executable), arguments: Arguments(arguments),
            workingDirectory: directory.map { FilePath($0.path) },
            platformOptions: platformOptions,
            output: .string(limit: 1 << 20), error: .string(limit: 1 << 16))
        return Outcome(
            succeeded: result.terminationStatus.isSuccess, standardOutput: result.standardOutput,
            standardError: result.standardError)
    }

    /// Runs ffmpeg with `-progress pipe:1`, calling `onFrame` with each reported frame number.
    static func runFFmpeg(
        _ executable: String, _ arguments: [String], in directory: URL, onFrame: @escaping @Sendable (Int) async -> Void
    ) async throws -> Outcome {
        let result = try await Subprocess.run(
            .name(executable), arguments: Arguments(arguments + ["-progress", "pipe:1", "-nostats"]),
            workingDirectory: FilePath(directory.path),
            platformOptions: platformOptions,
            input: .none, output: .sequence, error: .string(limit: 1 << 16)
        ) { execution in
            for try await line in execution.standardOutput.strings() {
                let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
                if trimmed.hasPrefix("frame="), let frame = Int(trimmed.dropFirst(6)) {
                    await onFrame(frame)
                }
            }
        }
        return Outcome(succeeded: result.terminationStatus.isSuccess, standardOutput: "", standardError: result.standardError)
    }

    /// The last meaningful lines of a tool's error output, for failure messages.
    static func reason(_ standardError: String) -> String {
        let lines = standardError.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let tail = lines.suffix(3).joined(separator: " | ")
        return tail.isEmpty ? "no error output" : String(tail.prefix(600))
    }
}
