// Times the preview engine against bare ffmpeg encoding the same frame size and count, in one run.
import Foundation
import KlingAPI
import KlingCore
import KlingPreview

/// Serves benchmark inputs from a local folder (`bench://name`): the benchmark times rendering, not the network, unless
/// `delay` stands in for it.
struct LocalFetcher: InputFetching {
    let directory: URL
    var delay: Duration = .zero

    func fetch(_ url: String, field: String, maxBytes: Int, to destination: URL) async throws {
        guard url.hasPrefix("bench://") else { throw EngineError.badInput("\(field): this benchmark serves only bench:// inputs") }
        if delay > .zero { try await Task.sleep(for: delay) }
        try? FileManager.default.removeItem(at: destination)
        try FileManager.default.copyItem(at: directory.appendingPathComponent(String(url.dropFirst(8))), to: destination)
    }
}

func time(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func ffmpeg(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["ffmpeg", "-v", "error", "-y"] + arguments
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw EngineError.renderFailed("ffmpeg failed: \(arguments)") }
}

func bareEncode(width: Int, height: Int, seconds: Int, preset: String, to file: URL) throws {
    try ffmpeg([
        "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height):rate=24", "-frames:v", "\(seconds * 24)", "-c:v", "libx264", "-preset", preset,
        "-pix_fmt", "yuv420p", "-movflags", "+faststart", file.path,
    ])
}

let preset = PreviewEngine.Configuration().preset
let root = FileManager.default.temporaryDirectory.appendingPathComponent("kling-render-bench-\(UUID().uuidString)")
let inputs = root.appendingPathComponent("inputs")
try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: root) }
// 16:9 stills (so the output keeps the mode's 16:9 size) and two element images.
for (name, source) in [
    ("first.png", "testsrc2=size=1920x1080"), ("last.png", "smptehdbars=size=1920x1080"), ("robot.png", "mandelbrot=size=600x600"),
    ("lamp.jpg", "testsrc=size=500x500"),
] {
    try ffmpeg(["-f", "lavfi", "-i", source, "-frames:v", "1", inputs.appendingPathComponent(name).path])
}
var configuration = PreviewEngine.Configuration()
// BENCH_PROCESSES caps the ffmpeg processes per render (to compare one process with several).
if let processes = ProcessInfo.processInfo.environment["BENCH_PROCESSES"].flatMap(Int.init) { configuration.parallelRenders = processes }
// BENCH_SPLIT_FROM sets the frame size (pixels) from which multi-shot videos render in several processes.
if let pixels = ProcessInfo.processInfo.environment["BENCH_SPLIT_FROM"].flatMap(Int.init) { configuration.splitFromPixels = pixels }
// BENCH_THREADS sets x264's threads per video process.
if let threads = ProcessInfo.processInfo.environment["BENCH_THREADS"].flatMap(Int.init) { configuration.threads = threads }
// BENCH_WARM=0 starts every ffmpeg process when the render needs it (no spares waiting).
if ProcessInfo.processInfo.environment["BENCH_WARM"] == "0" { configuration.warmProcesses = false }
// BENCH_FETCH_MS makes every input fetch take that long, as a download would.
let fetchDelay = Duration.milliseconds(Int(ProcessInfo.processInfo.environment["BENCH_FETCH_MS"] ?? "") ?? 0)
let engine = PreviewEngine(configuration: configuration, fetcher: LocalFetcher(directory: inputs, delay: fetchDelay))
let repeats = Int(ProcessInfo.processInfo.environment["BENCH_REPEATS"] ?? "") ?? 3
// BENCH_ONLY runs only the cases whose name contains it (for example `full-std-5`).
let only = ProcessInfo.processInfo.environment["BENCH_ONLY"]

/// Median render and bare-encode seconds for `request` at `width`x`height`, `seconds` long.
func measure(_ request: GenerationRequest, width: Int, height: Int, seconds: Int, name: String) async throws -> (render: Double, bare: Double)? {
    if let only, !name.contains(only) { return nil }
    var renders: [Double] = []
    var bares: [Double] = []
    for run in 0..<repeats {
        let out = root.appendingPathComponent("\(name)-\(run)")
        let scratch = out.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let job = RenderJob(taskID: "bench", request: request, outputDirectory: out, scratchDirectory: scratch)
        renders.append(try await time { _ = try await engine.render(job) { _ in } })
        // Spares replacing the ones the render used start now: let them load before the bare encode is timed, as a
        // server's would between renders.
        try await Task.sleep(for: .milliseconds(400))
        bares.append(
            try await time {
                try bareEncode(width: width, height: height, seconds: seconds, preset: preset, to: out.appendingPathComponent("bare.mp4"))
            })
        try? FileManager.default.removeItem(at: out)
    }
    return (renders.sorted()[renders.count / 2], bares.sorted()[bares.count / 2])
}

func row(_ label: String, width: Int, height: Int, seconds: Int, _ result: (render: Double, bare: Double)?) -> String {
    guard let result else { return "| \(label) | \(width)x\(height) | \(seconds) s | skipped | | | |" }
    return String(
        format: "| %@ | %dx%d | %d s | %.2f | %.2f | %.2fx | %.3f |", label, width, height, seconds, result.render, result.bare,
        result.render / result.bare, result.render / Double(seconds))
}

print("| request | size | duration | preview render (s) | bare x264 encode (s) | ratio | render per output second (s) |")
print("|---|---|---|---|---|---|---|")
for (mode, width, height) in [(GenerationRequest.Mode.std, 1280, 720), (.pro, 1920, 1080)] {
    for seconds in [5, 15] {
        let request = GenerationRequest(
            prompt: "A lighthouse on a cliff at dusk. \"Keep the light burning,\" she says.", duration: seconds, aspectRatio: .landscape, mode: mode,
            audio: true
        ).normalized()
        let result = try await measure(request, width: width, height: height, seconds: seconds, name: "single-\(mode.rawValue)-\(seconds)")
        print(row("text, 1 shot, speech", width: width, height: height, seconds: seconds, result))
    }
}
// The fidelity request: 3 shots with camera words, a first and a last image, 2 elements, dialogue of 2 speakers, audio.
for (mode, width, height) in [(GenerationRequest.Mode.std, 1280, 720), (.pro, 1920, 1080), (.fourK, 3840, 2160)] {
    for seconds in [5, 15] {
        let (a, b, c) = seconds == 5 ? (2, 1, 2) : (5, 5, 5)
        let request = GenerationRequest(
            multiShot: true, shotType: .customize,
            shots: [
                .init(prompt: #"Slow push in as @robot says "Keep the light burning.""#, duration: a),
                .init(prompt: #"Pan left across the harbour; @lamp flickers and Anna answers "It never goes out.""#, duration: b),
                .init(prompt: "Pull back from @robot and @lamp as the storm passes", duration: c),
            ],
            duration: seconds, mode: mode,
            imageURLs: ["bench://first.png", "bench://last.png"],
            elements: [
                .init(name: "robot", description: "a robot", imageURLs: ["bench://robot.png"]),
                .init(name: "lamp", description: "a lamp", imageURLs: ["bench://lamp.jpg"]),
            ]
        ).normalized()
        let result = try await measure(request, width: width, height: height, seconds: seconds, name: "full-\(mode.rawValue)-\(seconds)")
        print(row("3 shots, first+last, 2 elements, dialogue", width: width, height: height, seconds: seconds, result))
    }
}
