import Foundation
import Subprocess
import Testing

@testable import KlingPreview

/// Tools named without a path are looked up on PATH once and spawned by path; a missing tool is reported by name.
@Suite("Process runner")
struct ProcessRunnerTests {
    @Test func aToolNamedWithoutAPathRunsFromItsResolvedPath() async throws {
        let executable = await ProcessRunner.executable("ffmpeg")
        let resolved = try await executable.resolveExecutablePath(in: .inherit)
        #expect(resolved.string.hasPrefix("/"))
        #expect(FileManager.default.isExecutableFile(atPath: resolved.string))
        // Remembered: the second lookup answers the same path.
        #expect(try await ProcessRunner.executable("ffmpeg").resolveExecutablePath(in: .inherit) == resolved)
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
