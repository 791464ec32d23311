// Times the preview engine against bare ffmpeg encoding the same frame size and count, in one run.
import Foundation
import KlingAPI
import KlingCore
import KlingPreview

struct LocalNoFetch: InputFetching {
    func fetch(_ url: String, field: String, maxBytes: Int, to destination: URL) async throws {
        throw EngineError.badInput("\(field): this benchmark uses no inputs")
    }
}

func time(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func bareEncode(width: Int, height: Int, seconds: Int, preset: String, to file: URL) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
        "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height):rate=24",
        "-frames:v", "\(seconds * 24)", "-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p", "-movflags", "+faststart",
        file.path,
    ]
    try process.run()
    process.waitUntilExit()
}

let engine = PreviewEngine(fetcher: LocalNoFetch())
let preset = PreviewEngine.Configuration().preset
let root = FileManager.default.temporaryDirectory.appendingPathComponent("kling-render-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: root) }
let repeats = Int(ProcessInfo.processInfo.environment["BENCH_REPEATS"] ?? "") ?? 3

print("| size | duration | preview render (s) | bare x264 encode (s) | ratio | per output second (s) |")
print("|---|---|---|---|---|---|")
for (mode, width, height) in [(GenerationRequest.Mode.std, 1280, 720), (.pro, 1920, 1080)] {
    for seconds in [5, 15] {
        var request = GenerationRequest(
            prompt: "A lighthouse on a cliff at dusk. \"Keep the light burning,\" she says.", duration: seconds, aspectRatio: .landscape, mode: mode,
            audio: true)
        request = request.normalized()
        var renders: [Double] = []
        var bares: [Double] = []
        for run in 0..<repeats {
            let out = root.appendingPathComponent("\(mode.rawValue)-\(seconds)-\(run)")
            let scratch = out.appendingPathComponent("tmp")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            let job = RenderJob(taskID: "bench", request: request, outputDirectory: out, scratchDirectory: scratch)
            renders.append(try await time { _ = try await engine.render(job) { _ in } })
            bares.append(
                try await time {
                    try bareEncode(width: width, height: height, seconds: seconds, preset: preset, to: out.appendingPathComponent("bare.mp4"))
                })
        }
        let render = renders.sorted()[renders.count / 2]
        let bare = bares.sorted()[bares.count / 2]
        print(
            String(
                format: "| %dx%d | %d s | %.2f | %.2f | %.2fx | %.3f |", width, height, seconds, render, bare, render / bare, render / Double(seconds)
            ))
    }
}
