import Foundation
import KlingCore
import Synchronization
import Testing

@testable import KlingPreview

/// Spare ffmpeg processes: started ahead, given their graph on standard input, replaced when they die, torn down when
/// their render is cancelled, ended when idle, and never left running or leaving folders behind.
@Suite("ffmpeg pool")
struct FFmpegPoolTests {
    /// Arguments of a process that encodes `[v]` into `s/out.mp4`, the graph coming on standard input.
    let arguments = [
        "-nostdin", "-hide_banner", "-v", "error", "-y", "-filter_complex_script", "/dev/stdin",
        "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-f", "mp4", "\(FilterGraphBuilder.scratchLink)/out.mp4",
    ]

    func frames(in file: URL) async throws -> Int {
        let probe = try await ProcessRunner.run(
            "ffprobe", ["-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file.path])
        return Int(probe.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    func waitFor(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func workingFolders(of pool: FFmpegPool) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: pool.root.path)) ?? []
    }

    /// Asks `pool` for a spare of ``arguments`` and returns its process id once it has started.
    func startedSpare(_ pool: FFmpegPool) async throws -> pid_t {
        pool.keepSpares("ffmpeg", arguments)
        try await waitFor { pool.spareProcessIDs.count == 1 }
        return try #require(pool.spareProcessIDs.first)
    }

    @Test func aSpareStartedAheadRendersTheGraphItIsGivenIntoTheScratchFolder() async throws {
        let pool = FFmpegPool()
        let scratch = try scratchDirectory("pool")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let spare = try await startedSpare(pool)
        #expect(isRunning(spare))

        let reported = Mutex<[Int]>([])
        let outcome = try await pool.run(
            "ffmpeg", arguments, graph: "color=c=red:s=64x48:r=24,trim=end_frame=30[v]", scratch: scratch
        ) { frame in reported.withLock { $0.append(frame) } }
        #expect(outcome.succeeded, "\(outcome.standardError)")
        // The spare did the work (none is started in its place until asked), and it has ended.
        #expect(pool.spareCount == 0)
        #expect(!isRunning(spare))
        #expect(try await frames(in: scratch.appendingPathComponent("out.mp4")) == 30)
        #expect(reported.withLock { $0.last } == 30)

        // A second run without a spare starts its own process, and asking again keeps one spare (not two).
        let again = try await pool.run("ffmpeg", arguments, graph: "color=s=64x48:r=24,trim=end_frame=5[v]", scratch: scratch) { _ in }
        #expect(again.succeeded)
        pool.keepSpares("ffmpeg", arguments)
        pool.keepSpares("ffmpeg", arguments)
        try await waitFor { pool.spareProcessIDs.count == 1 }
        #expect(pool.spareCount == 1)
        pool.drain()
    }

    @Test func aSpareKilledWhileItWaitedIsReplacedByAFreshProcess() async throws {
        let pool = FFmpegPool()
        let scratch = try scratchDirectory("pool")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let spare = try await startedSpare(pool)
        kill(spare, SIGKILL)
        try await waitFor { !isRunning(spare) }

        let outcome = try await pool.run("ffmpeg", arguments, graph: "color=s=64x48:r=24,trim=end_frame=12[v]", scratch: scratch) { _ in }
        #expect(outcome.succeeded, "\(outcome.standardError)")
        #expect(try await frames(in: scratch.appendingPathComponent("out.mp4")) == 12)
    }

    @Test func aGraphFFmpegRefusesFailsWithItsErrorAndTheProcessEnds() async throws {
        let pool = FFmpegPool()
        let scratch = try scratchDirectory("pool")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outcome = try await pool.run("ffmpeg", arguments, graph: "nosuchfilter[v]", scratch: scratch) { _ in }
        #expect(!outcome.succeeded)
        #expect(outcome.standardError.contains("nosuchfilter"), "\(outcome.standardError)")
    }

    @Test func aMissingExecutableFailsWithARenderError() async throws {
        let pool = FFmpegPool()
        let scratch = try scratchDirectory("pool")
        defer { try? FileManager.default.removeItem(at: scratch) }
        await #expect {
            _ = try await pool.run("kling-no-such-ffmpeg", arguments, graph: "nullsrc[v]", scratch: scratch) { _ in }
        } throws: { error in
            guard let error = error as? EngineError else { return false }
            return error.code == 501 && error.message.contains("ffmpeg could not be run")
        }
        // Nor is a spare of it kept.
        pool.keepSpares("kling-no-such-ffmpeg", arguments)
        try await waitFor { pool.spareCount == 0 }
        #expect(pool.spareCount == 0)
    }

    @Test func cancellingARunTearsItsProcessDownBeforeItReturns() async throws {
        let pool = FFmpegPool()
        let scratch = try scratchDirectory("pool")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let spare = try await startedSpare(pool)
        let started = Mutex(false)
        // A graph that would take minutes.
        let run = Task {
            try await pool.run("ffmpeg", arguments, graph: "testsrc2=s=1280x720:r=24,trim=end_frame=100000[v]", scratch: scratch) { _ in
                started.withLock { $0 = true }
            }
        }
        try await waitFor { started.withLock { $0 } }
        #expect(started.withLock { $0 })
        let cancelled = ContinuousClock.now
        run.cancel()
        await #expect(throws: CancellationError.self) { _ = try await run.value }
        #expect(ContinuousClock.now - cancelled < .seconds(10))
        #expect(!isRunning(spare))
        #expect(workingFolders(of: pool).isEmpty)
    }

    @Test func aSpareIdleForItsLimitEndsAndTakesItsFolderWithIt() async throws {
        let pool = FFmpegPool(idleLimit: .seconds(1))
        pool.keepSpares("ffmpeg", arguments)
        #expect(pool.spareCount == 1)
        try await waitFor { pool.spareProcessIDs.count == 1 || pool.spareCount == 0 }
        let spare = pool.spareProcessIDs.first
        // Its folder goes once its process has exited.
        try await waitFor { pool.spareCount == 0 && workingFolders(of: pool).isEmpty }
        #expect(pool.spareCount == 0)
        #expect(workingFolders(of: pool).isEmpty)
        if let spare { #expect(!isRunning(spare)) }
    }

    @Test func withoutAWritableFolderOfItsOwnAProcessWorksInTheScratchFolder() async throws {
        let blocked = try scratchDirectory("pool-blocked")
        defer { try? FileManager.default.removeItem(at: blocked) }
        // A file where the pool's folder would go: nothing can be created under it.
        let file = blocked.appendingPathComponent("not-a-directory")
        try Data().write(to: file)
        let pool = FFmpegPool(directory: file)
        let scratch = try scratchDirectory("pool")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outcome = try await pool.run("ffmpeg", arguments, graph: "color=s=64x48:r=24,trim=end_frame=6[v]", scratch: scratch) { _ in }
        #expect(outcome.succeeded, "\(outcome.standardError)")
        #expect(try await frames(in: scratch.appendingPathComponent("out.mp4")) == 6)
        pool.keepSpares("ffmpeg", arguments)
        #expect(pool.spareCount == 0)
    }

    @Test func foldersOfEndedProcessesAreRemovedAndOthersKept() throws {
        let directory = try scratchDirectory("pool-folders")
        defer { try? FileManager.default.removeItem(at: directory) }
        // A pid that cannot exist (above the kernel's pid_max), this process's own, and a foreign name.
        let ended = directory.appendingPathComponent("\(FFmpegPool.folderPrefix)99999999-abcd1234/3")
        let own = directory.appendingPathComponent("\(FFmpegPool.folderPrefix)\(getpid())-abcd1234")
        let other = directory.appendingPathComponent("kling-render-bench-1")
        for folder in [ended, own, other] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        FFmpegPool.removeFoldersOfEndedProcesses(in: directory)
        #expect(!FileManager.default.fileExists(atPath: ended.deletingLastPathComponent().path))
        #expect(FileManager.default.fileExists(atPath: own.path))
        #expect(FileManager.default.fileExists(atPath: other.path))
    }
}
