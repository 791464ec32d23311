import Foundation
import Subprocess
import SystemPackage

/// Runs a program to completion and collects what it printed (swift-subprocess).
enum CommandRunner {
    struct Result: Sendable {
        var status: Int32
        var output: String
        var error: String
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String?] = [:]) async throws -> Result {
        var overrides: [Environment.Key: String?] = [:]
        for (name, value) in environment { if let key = Environment.Key(rawValue: name) { overrides[key] = value } }
        let result = try await Subprocess.run(
            executable.contains("/") ? .path(FilePath(executable)) : .name(executable), arguments: Arguments(arguments),
            environment: .inherit.updating(overrides), output: .string(limit: 4 << 20), error: .string(limit: 4 << 20))
        let status: Int32
        switch result.terminationStatus {
        case .exited(let code): status = Int32(code)
        case .signaled(let signal): status = 128 + Int32(signal)
        }
        return Result(status: status, output: result.standardOutput, error: result.standardError)
    }

    /// The `kling` binary built next to the test bundle.
    static var klingBinary: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kling")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside.path }
        // `swift test` on Linux runs <build>/debug/KlingKitPackageTests.xctest; fall back to the package's .build.
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return package.appendingPathComponent(".build/debug/kling").path
    }
}
