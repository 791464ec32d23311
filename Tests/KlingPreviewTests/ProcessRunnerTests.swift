import Foundation
import Subprocess
import Testing

@testable import KlingPreview

/// Tools named without a path are looked up on PATH once and spawned by path; a missing tool is reported by name.
@Suite("Process runner")
struct ProcessRunnerTests {
    @Test func aToolNamedWithoutAPathRunsFromItsResolvedPath() async throws {
        let resolved = try await Executable.name("ffmpeg").resolveExecutablePath(in: .inherit)
        #expect(FileManager.default.isExecutableFile(atPath: resolved.string))
        // Spawned by its absolute path (never by name, which forks once per PATH directory), and remembered.
        #expect(await ProcessRunner.executable("ffmpeg") == .path(resolved))
        #expect(await ProcessRunner.executable("ffmpeg") == .path(resolved))
        #expect(await ProcessRunner.executable("/usr/bin/env") == .path("/usr/bin/env"))
        let outcome = try await ProcessRunner.run("ffmpeg", ["-hide_banner", "-version"])
        #expect(outcome.succeeded)
        #expect(outcome.standardOutput.hasPrefix("ffmpeg version"))
    }

    @Test func aMissingToolFailsWithItsName() async throws {
        await #expect {
            _ = try await ProcessRunner.run("kling-no-such-tool", ["-version"])
        } throws: { error in
            "\(error)".contains("kling-no-such-tool could not be run")
        }
    }

    @Test func cpuFlagsAreCheckedWithFFmpegsOwnParser() {
        #expect(PreviewEngine.Configuration.acceptsCPUFlags("+slowgather"))
        #expect(PreviewEngine.Configuration.acceptsCPUFlags("-avx2"))
        #expect(!PreviewEngine.Configuration.acceptsCPUFlags("+nosuchflag"))
        // On AMD the default avoids AVX2 gathers; elsewhere ffmpeg chooses.
        let amd = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains("AuthenticAMD") ?? false
        #expect(PreviewEngine.Configuration.defaultCPUFlags == (amd ? "+slowgather" : nil))
    }
}
