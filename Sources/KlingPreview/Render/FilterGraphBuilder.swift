import Foundation

/// Builds the one ffmpeg invocation that renders a preview: inputs, the filter graph and output options.
///
/// The video is built to an exact frame count by construction (each shot trimmed to whole frames, then concatenated);
/// audio is cut in samples. File names are relative to the working directory (the scratch folder), so no path ever
/// needs escaping inside the graph.
struct FilterGraphBuilder {
    struct Still: Sendable {
        var file: String
    }

    var size: FrameSize
    var plan: ShotPlan
    var looks: [PreviewLook]
    /// Caption text file per shot (relative names).
    var captionFiles: [String]
    var labelFile: String
    var fontFile: String?
    var firstFrame: Still?
    var lastFrame: Still?
    var audio: Bool
    /// Speech WAV per shot index (relative names).
    var speech: [Int: String]
    var audioSeed: UInt64
    var preset: String

    static let sampleRate = 48_000

    func arguments(output: String) -> [String] {
        var inputs: [String] = []
        var inputCount = 0
        func addInput(_ file: String) -> Int {
            inputs += ["-i", file]
            defer { inputCount += 1 }
            return inputCount
        }
        let firstIndex = firstFrame.map { addInput($0.file) }
        let lastIndex = lastFrame.map { addInput($0.file) }
        var speechInputs: [(shot: Int, input: Int)] = []
        for shot in speech.keys.sorted() {
            if let file = speech[shot] { speechInputs.append((shot, addInput(file))) }
        }

        var chains: [String] = []
        let w = size.width, h = size.height
        let fontSize = max(18, h / 24)
        let font = fontFile.map { "fontfile=\($0)" } ?? "font=Sans"
        for (index, shot) in plan.shots.enumerated() {
            let frames = shot.frames
            var base: String
            if index == 0, let firstIndex {
                base =
                    "[\(firstIndex):v]scale=\(w):\(h),setsar=1,format=yuv420p,"
                    + "zoompan=z='1+0.10*on/\(frames)':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=\(frames):s=\(w)x\(h):fps=24,"
                    + "trim=end_frame=\(frames),setpts=PTS-STARTPTS"
                if let lastIndex, plan.shots.count == 1 {
                    let fade = min(24, frames / 3)
                    let hold = min(12, frames / 4)
                    let offset = frames - fade - hold
                    chains.append(base + "[first\(index)]")
                    chains.append(
                        "[\(lastIndex):v]scale=\(w):\(h),setsar=1,format=yuv420p,loop=loop=\(frames - 1):size=1:start=0,setpts=N/24/TB[last\(index)]")
                    base =
                        "[first\(index)][last\(index)]xfade=transition=fade:duration=\(Self.seconds(fade)):offset=\(Self.seconds(offset)),"
                        + "trim=end_frame=\(frames),setpts=PTS-STARTPTS"
                }
            } else {
                let look = looks[index]
                base =
                    "color=c=\(look.background):s=\(w)x\(h):r=24,trim=end_frame=\(frames),setpts=PTS-STARTPTS,"
                    + "drawbox=x='mod(t*\(look.speedX * w / 1280)\\,iw)':y='ih/4+mod(t*\(look.speedY * h / 720)\\,ih/2)':w=iw/5:h=ih/5:color=\(look.accent)@0.85:t=fill,"
                    + "drawbox=x='iw-mod(t*\(look.speedY * w / 1280)\\,iw)':y=ih/8:w=iw/9:h=ih/9:color=\(look.accent)@0.5:t=fill"
            }
            let caption =
                "drawtext=\(font):textfile=\(captionFiles[index]):expansion=none:fontcolor=white:fontsize=\(fontSize)"
                + ":line_spacing=\(fontSize / 4):x=(w-text_w)/2:y=h-text_h-\(h / 14):box=1:boxcolor=black@0.55:boxborderw=\(fontSize / 2)"
            chains.append("\(base),\(caption)[s\(index)]")
        }
        let shotLabels = plan.shots.indices.map { "[s\($0)]" }.joined()
        let labelSize = max(14, h / 40)
        chains.append(
            "\(shotLabels)concat=n=\(plan.shots.count):v=1:a=0,"
                + "drawtext=\(font):textfile=\(labelFile):expansion=none:fontcolor=white@0.85:fontsize=\(labelSize):x=\(labelSize):y=\(labelSize)"
                + ":box=1:boxcolor=black@0.4:boxborderw=\(labelSize / 3),format=yuv420p[v]")

        var maps = ["-map", "[v]"]
        var audioOptions: [String] = []
        if audio {
            let totalSamples = plan.totalFrames * Self.sampleRate / 24
            let seconds = Double(plan.totalFrames) / 24 + 1
            chains.append(
                "anoisesrc=color=brown:seed=\(audioSeed % 2_147_483_647):amplitude=0.05:sample_rate=\(Self.sampleRate):duration=\(seconds),"
                    + "lowpass=f=500,volume=0.6[bed]")
            var mixInputs = "[bed]"
            for (shot, input) in speechInputs {
                let window = plan.shots[shot]
                let startSamples = window.startFrame * Self.sampleRate / 24 + Self.sampleRate / 5
                let maxSamples = max(1, window.frames * Self.sampleRate / 24 - Self.sampleRate / 5 - Self.sampleRate / 10)
                chains.append(
                    "[\(input):a]aresample=\(Self.sampleRate),aformat=sample_fmts=fltp:channel_layouts=mono,atrim=end_sample=\(maxSamples),"
                        + "adelay=delays=\(startSamples)S:all=1[sp\(shot)]")
                mixInputs += "[sp\(shot)]"
            }
            chains.append(
                "\(mixInputs)amix=inputs=\(speechInputs.count + 1):duration=first:normalize=0,atrim=end_sample=\(totalSamples),"
                    + "aformat=sample_fmts=fltp:sample_rates=\(Self.sampleRate):channel_layouts=stereo[a]")
            maps += ["-map", "[a]"]
            audioOptions = ["-c:a", "aac", "-b:a", "128k", "-ar", "\(Self.sampleRate)", "-ac", "2", "-flags:a", "+bitexact"]
        }

        return ["-nostdin", "-v", "error", "-y", "-threads", "2"] + inputs
            + ["-filter_complex", chains.joined(separator: ";\n")]
            + maps
            + ["-c:v", "libx264", "-preset", preset, "-crf", "23", "-pix_fmt", "yuv420p", "-r", "24", "-flags:v", "+bitexact"]
            + audioOptions
            + ["-fflags", "+bitexact", "-map_metadata", "-1", "-movflags", "+faststart", output]
    }

    static func seconds(_ frames: Int) -> String {
        String(format: "%.6f", Double(frames) / 24)
    }
}
