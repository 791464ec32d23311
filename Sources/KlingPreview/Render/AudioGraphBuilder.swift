import Foundation

/// Builds the audio track's filter graph for ``AudioRenderer``. It depends only on the shot plan (not on the images or
/// the frame size), so the track renders while the inputs are still being fetched.
struct AudioGraphBuilder: Sendable {
    var plan: ShotPlan
    /// Seeds the noise bed, so the same prompts give the same bytes.
    var seed: UInt64

    static let sampleRate = 48_000

    /// The filter graph of the whole track for ``AudioRenderer``: the spoken lines per shot index read from their WAV
    /// files in `directory` (`amovie` sources), ending in the buffer sink the renderer reads.
    func graph(speech: [Int: [SpeechSynthesizer.Clip]], directory: URL) -> String {
        var speechInputs: [(shot: Int, clip: SpeechSynthesizer.Clip, source: String)] = []
        for shot in speech.keys.sorted() {
            for clip in speech[shot] ?? [] {
                speechInputs.append((shot, clip, "amovie=filename=" + FilterGraphBuilder.escape(directory.appendingPathComponent(clip.file).path)))
            }
        }
        return (chains(speechInputs: speechInputs) + ["[a]abuffersink"]).joined(separator: ";\n")
    }

    /// A quiet brown-noise bed under the whole video, a short swish at every cut, and each shot's lines one after
    /// another inside its window (a line that does not fit is cut at the window's end), mixed and cut to the exact
    /// sample count.
    private func chains(speechInputs: [(shot: Int, clip: SpeechSynthesizer.Clip, source: String)]) -> [String] {
        let rate = Self.sampleRate
        let totalSamples = plan.totalFrames * rate / FilterGraphBuilder.fps
        let mono = "aformat=sample_fmts=fltp:sample_rates=\(rate):channel_layouts=mono"
        var chains = [
            "anoisesrc=color=brown:seed=\(seed % 2_147_483_647):amplitude=0.05:sample_rate=\(rate),"
                + "atrim=end_sample=\(totalSamples),lowpass=f=500,volume=0.6,\(mono)[bed]"
        ]
        var mixInputs = ["[bed]"]
        let cuts = plan.shots.dropFirst().map { $0.startFrame * rate / FilterGraphBuilder.fps }
        if !cuts.isEmpty {
            // 0.3 s of band-passed noise swelling into the cut and fading after it.
            let lead = rate / 10
            let outputs = cuts.indices.map { "[swish\($0)]" }.joined()
            chains.append(
                "anoisesrc=color=pink:seed=7:amplitude=0.5:sample_rate=\(rate),atrim=end_sample=\(rate * 3 / 10),"
                    + "highpass=f=700,lowpass=f=5000,afade=t=in:d=0.1,afade=t=out:st=0.1:d=0.2,\(mono),"
                    + "asplit=\(cuts.count)\(outputs)")
            for (index, cut) in cuts.enumerated() {
                chains.append("[swish\(index)]adelay=delays=\(max(0, cut - lead))S:all=1[cut\(index)]")
                mixInputs.append("[cut\(index)]")
            }
        }
        var cursor: [Int: Int] = [:]
        for (number, (shot, clip, source)) in speechInputs.enumerated() {
            let window = plan.shots[shot]
            let windowStart = window.startFrame * rate / FilterGraphBuilder.fps
            let windowEnd = (window.startFrame + window.frames) * rate / FilterGraphBuilder.fps - rate / 10
            let start = cursor[shot] ?? windowStart + rate / 5
            let length = min(clip.samples, windowEnd - start)
            guard length > rate / 10 else { continue }
            cursor[shot] = start + length + rate / 4
            chains.append(
                "\(source),aresample=\(rate),\(mono),atrim=end_sample=\(length),afade=t=out:st=\(Self.seconds(samples: length - rate / 50)):d=0.02,"
                    + "adelay=delays=\(start)S:all=1[speech\(number)]")
            mixInputs.append("[speech\(number)]")
        }
        chains.append(
            "\(mixInputs.joined())amix=inputs=\(mixInputs.count):duration=first:normalize=0,"
                + "aformat=sample_fmts=fltp:sample_rates=\(rate):channel_layouts=stereo,atrim=end_sample=\(totalSamples)[a]")
        return chains
    }

    static func seconds(samples: Int) -> String {
        String(format: "%.6f", Double(max(0, samples)) / Double(sampleRate))
    }
}
