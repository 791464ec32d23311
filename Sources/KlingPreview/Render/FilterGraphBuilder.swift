import Foundation

/// Builds the ffmpeg invocations that render a preview: one per shot (a video-only segment; shot 1 also writes the
/// cover), one for the audio track, and the stream-copy join of both into the final MP4.
///
/// The video is built to an exact frame count by construction: every shot is rendered to whole frames and the segments
/// are concatenated, so cuts fall exactly on shot boundaries. A first/last dissolve cross-fades only the short overlapping
/// pieces (never whole streams). Audio is cut in samples. File names in the graph are relative to the working directory
/// (the scratch folder), so no path ever needs escaping inside the graph; caption text comes from files
/// (`textfile=` with `expansion=none`), so prompts need no escaping either.
struct FilterGraphBuilder: Sendable {
    /// An image input: a file in the scratch folder and the ffmpeg demuxer that reads it.
    struct Still: Sendable, Hashable {
        var file: String
        var demuxer: String
    }

    /// An element overlaid (with its name) in the shots that mention it: a reference image, or a video's frames.
    struct ElementOverlay: Sendable, Hashable {
        enum Source: Sendable, Hashable {
            case image(Still)
            /// A video file, looped for as long as a shot lasts.
            case video(file: String)
        }

        var source: Source
        /// Text file holding the element's name.
        var labelFile: String
        /// Indices of the shots that show it.
        var shots: [Int]
    }

    var size: FrameSize
    var plan: ShotPlan
    var looks: [PreviewLook]
    /// Camera motion per shot (used where a shot shows a still image).
    var moves: [CameraMove]
    /// Caption text file per shot.
    var captionFiles: [String]
    /// Text file of the fixed "KlingKit preview" label.
    var labelFile: String
    /// Font for all text; `nil` lets fontconfig pick its default sans.
    var fontFile: String?
    var firstFrame: Still?
    var lastFrame: Still?
    var elements: [ElementOverlay] = []
    var audio: Bool
    /// Spoken lines per shot index, in the order they are said.
    var speech: [Int: [SpeechSynthesizer.Clip]] = [:]
    var audioSeed: UInt64
    var preset: String
    var threads: Int

    static let fps = 24
    static let sampleRate = 48_000

    /// Arguments (without progress options) rendering shot `shot` alone as a video-only MP4 segment to `video`, and,
    /// given `cover`, its first frame as the JPEG cover. Shots render as separate processes side by side; ``muxArguments``
    /// joins the segments (stream copy) with the audio from ``audioArguments``.
    func segmentArguments(shot index: Int, video: String, cover: String?) -> [String] {
        var inputs: [String] = []
        var inputCount = 0
        func addInput(_ options: [String]) -> Int {
            inputs += options
            defer { inputCount += 1 }
            return inputCount
        }
        func addStill(_ still: Still) -> Int {
            addInput(["-f", still.demuxer, "-framerate", "\(Self.fps)", "-i", still.file])
        }
        let shot = plan.shots[index]
        let single = plan.shots.count == 1
        let firstInput = index == 0 ? firstFrame.map(addStill) : nil
        let lastInput = index == plan.shots.count - 1 ? lastFrame.map(addStill) : nil
        let all = elementsShown()
        let shown = all.indices.map { $0 == index ? all[$0] : [] }
        // Per element shown here, its input: a decoded image, or a video looped for as long as the shot lasts.
        var elementInputs: [Int: [Int: Int]] = [:]
        for element in shown[index] {
            switch elements[element].source {
            case .image(let still): elementInputs[element] = [index: addStill(still)]
            case .video(let file): elementInputs[element] = [index: addInput(["-stream_loop", "-1", "-i", file])]
            }
        }

        var chains = elementChains(inputs: elementInputs, shown: shown)
        var segment: String
        if let firstInput, let lastInput, single {
            chains += dissolveChains(first: firstInput, last: lastInput, frames: shot.frames, move: moves[index])
            segment = "[dissolved]null"
        } else if let firstInput {
            segment = stillClip(input: firstInput, frames: shot.frames, move: moves[index], reversed: false)
        } else if let lastInput, !single {
            // Several shots and a last image: the last shot moves to rest on it.
            segment = stillClip(input: lastInput, frames: shot.frames, move: moves[index], reversed: true)
        } else {
            chains += colourClip(look: looks[index], frames: shot.frames)
            segment = "[colour]null"
        }
        if !shown[index].isEmpty {
            chains.append("\(segment)[shot\(index)bare]")
            var current = "shot\(index)bare"
            for (slot, element) in shown[index].enumerated() {
                let next = "shot\(index)el\(slot)"
                chains.append(
                    "[\(current)][el\(element)for\(index)]overlay=x=W-w-\(margin):y=\(margin + slot * (elementSlotHeight + margin))"
                        + ":eof_action=repeat[\(next)]")
                current = next
            }
            segment = "[\(current)]null"
        }
        let labelSize = max(14, size.height / 40)
        chains.append(
            "\(segment),\(captionFilter(file: captionFiles[index])),"
                + "drawtext=\(font):textfile=\(labelFile):expansion=none:fontcolor=white@0.85:fontsize=\(labelSize)"
                + ":x=\(labelSize):y=\(labelSize):box=1:boxcolor=black@0.4:boxborderw=\(labelSize / 3),"
                + "trim=end_frame=\(shot.frames),format=yuv420p" + (cover == nil ? "[v]" : ",split=2[v][coversource]"))
        var outputs = [
            "-map", "[v]", "-c:v", "libx264", "-preset", preset, "-crf", "23", "-pix_fmt", "yuv420p", "-threads", "\(threads)",
            "-flags:v", "+bitexact", "-fflags", "+bitexact", "-map_metadata", "-1", "-f", "mp4", video,
        ]
        if let cover {
            // The cover is frame 0 through a one-frame trim branch (no select: that lets frames pile up in split).
            chains.append("[coversource]trim=end_frame=1,scale=out_range=full,format=yuvj420p[cover]")
            outputs += [
                "-map", "[cover]", "-c:v", "mjpeg", "-q:v", "3", "-flags:v", "+bitexact", "-fflags", "+bitexact",
                "-map_metadata", "-1", "-f", "mjpeg", cover,
            ]
        }
        return ["-nostdin", "-hide_banner", "-v", "error", "-y"] + inputs + ["-filter_complex", chains.joined(separator: ";\n")] + outputs
    }

    /// Arguments rendering the whole audio track (AAC in MP4) to `output`; only called when audio is on.
    func audioArguments(output: String) -> [String] {
        var inputs: [String] = []
        var speechInputs: [(shot: Int, clip: SpeechSynthesizer.Clip, input: Int)] = []
        for shot in speech.keys.sorted() {
            for clip in speech[shot] ?? [] {
                speechInputs.append((shot, clip, speechInputs.count))
                inputs += ["-i", clip.file]
            }
        }
        return ["-nostdin", "-hide_banner", "-v", "error", "-y"] + inputs
            + ["-filter_complex", audioChains(speechInputs: speechInputs).joined(separator: ";\n")]
            + [
                "-map", "[a]", "-c:a", "aac", "-b:a", "128k", "-ar", "\(Self.sampleRate)", "-ac", "2", "-flags:a", "+bitexact",
                "-fflags", "+bitexact", "-map_metadata", "-1", "-f", "mp4", output,
            ]
    }

    /// Arguments joining the segments listed in `list` (an ffconcat file) and the optional audio file into `video`
    /// by stream copy, with the index first.
    static func muxArguments(list: String, audio: String?, video: String) -> [String] {
        ["-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", list]
            + (audio.map { ["-i", $0, "-map", "0:v", "-map", "1:a"] } ?? ["-map", "0:v"])
            + ["-c", "copy", "-fflags", "+bitexact", "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", video]
    }

    // MARK: - Video pieces

    private var font: String { fontFile.map { "fontfile=\(Self.escape($0))" } ?? "font=Sans" }
    private var margin: Int { max(8, size.height / 30) / 2 * 2 }

    /// A generated shot: the look's background with three shapes moving across it, labelled `[colour]`.
    ///
    /// The shapes are overlaid sources: overlay evaluates its position per frame with `t` as the time (in drawbox, `t`
    /// is the box's thickness, so drawbox shapes cannot move).
    private func colourClip(look: PreviewLook, frames: Int) -> [String] {
        let w = size.width, h = size.height
        let speedX = look.speedX * w / 1280, speedY = look.speedY * h / 720
        // Opaque shapes in colours pre-blended with the background: overlay then copies pixels instead of blending.
        func shape(_ colour: String, _ width: Double, _ height: Double, _ label: String) -> String {
            "color=c=\(colour):s=\(Self.even(Double(width)))x\(Self.even(Double(height))):r=\(Self.fps)[\(label)]"
        }
        return [
            "color=c=\(look.background):s=\(w)x\(h):r=\(Self.fps),trim=end_frame=\(frames),setpts=PTS-STARTPTS[colourbg]",
            shape(PreviewLook.blend(look.accent, over: look.background, opacity: 0.9), Double(w) / 5, Double(h) / 5, "shapea"),
            shape(PreviewLook.blend(look.accent, over: look.background, opacity: 0.6), Double(w) / 9, Double(h) / 9, "shapeb"),
            shape(PreviewLook.blend("0xffffff", over: look.background, opacity: 0.5), Double(h) / 12, Double(h) / 12, "shapec"),
            "[colourbg][shapea]overlay=x='mod(t*\(speedX)+W/3,W+w)-w':y='H/4+mod(t*\(speedY),H/2)':shortest=1[coloura]",
            "[coloura][shapeb]overlay=x='W-mod(t*\(speedY * 2),W+w)':y=H/8:shortest=1[colourb]",
            "[colourb][shapec]overlay=x='W/2+W/3*sin(t*\(look.speedX % 5 + 1)/3)':y='H*3/5+H/8*cos(t)':shortest=1[colour]",
        ]
    }

    /// A still image fitted to the frame at its aspect (black bars where the aspects differ), moved by the shot's
    /// camera for `frames` frames: starting at rest on the whole image (so the shot opens on it) or, `reversed`,
    /// arriving at rest on it (so the video ends on it). Motion is eased in and out.
    private func stillClip(input: Int, frames: Int, move: CameraMove, reversed: Bool) -> String {
        let w = size.width, h = size.height
        let fit =
            "[\(input):v]scale=\(w):\(h):force_original_aspect_ratio=decrease:force_divisible_by=2,"
            + "pad=\(w):\(h):(ow-iw)/2:(oh-ih)/2:color=black,setsar=1"
        if move == .still {
            // Decoded once and held: no per-frame work before the encoder.
            return fit + ",format=yuv420p,tpad=stop_mode=clone:stop=\(frames - 1),settb=1/\(Self.fps),setpts=N"
        }
        let canvasWidth = Self.even(Double(w) * move.canvasScale), canvasHeight = Self.even(Double(h) * move.canvasScale)
        let canvas = move.canvasScale > 1 ? ",pad=\(canvasWidth):\(canvasHeight):(ow-iw)/2:(oh-ih)/2:color=black" : ""
        let last = max(1, frames - 1)
        let p = reversed ? "(1-on/\(last))" : "(on/\(last))"
        let eased = "(\(p)*\(p)*(3-2*\(p)))"
        let zoom = move.zoom(eased)
        let offset = move.offset(zoom: zoom, progress: p, eased: eased)
        // zoompan's zoom is relative to the canvas; the image fills w x h of it.
        let canvasZoom = String(format: "%.6f", Double(canvasWidth) / Double(w))
        return fit + canvas + ",format=yuv420p,"
            + "zoompan=z='\(canvasZoom)*\(zoom)':x='iw/2+\(offset.x)*\(w)-iw/zoom/2':y='ih/2+\(offset.y)*\(h)-ih/zoom/2'"
            + ":d=\(frames):s=\(w)x\(h):fps=\(Self.fps),settb=1/\(Self.fps),setpts=N"
    }

    /// The first image moving away from rest, a cross-dissolve in the middle, and the last image moving to rest at the
    /// end. Only the `fade`-frame overlap goes through xfade; the rest is concatenated. Output label: `dissolved`.
    private func dissolveChains(first: Int, last: Int, frames: Int, move: CameraMove) -> [String] {
        let fade = frames >= 72 ? 24 : 12
        let cut = (frames - fade) / 2
        return [
            stillClip(input: first, frames: cut + fade, move: move, reversed: false) + ",split=2[firsta][firstb]",
            "[firsta]trim=end_frame=\(cut)[firsthead]",
            "[firstb]trim=start_frame=\(cut),setpts=PTS-STARTPTS[firsttail]",
            stillClip(input: last, frames: frames - cut, move: move, reversed: true) + ",split=2[lasta][lastb]",
            "[lasta]trim=end_frame=\(fade)[lasthead]",
            "[lastb]trim=start_frame=\(fade),setpts=PTS-STARTPTS[lastbody]",
            "[firsttail][lasthead]xfade=transition=fade:duration=\(Self.seconds(fade)):offset=0[crossfade]",
            "[firsthead][crossfade][lastbody]concat=n=3:v=1:a=0[dissolved]",
        ]
    }

    private func captionFilter(file: String) -> String {
        let fontSize = CaptionText.fontSize(height: size.height)
        return "drawtext=\(font):textfile=\(file):expansion=none:fontcolor=white:fontsize=\(fontSize)"
            + ":line_spacing=\(fontSize / 4):x=(w-text_w)/2:y=h-text_h-\(size.height / 14)"
            + ":box=1:boxcolor=black@0.55:boxborderw=\(fontSize / 2)"
    }

    // MARK: - Elements

    private var elementThumb: Int { Self.even(Double(size.height) / 6) }
    private var elementLabelSize: Int { max(12, size.height / 45) }
    private var elementBorder: Int { max(2, size.height / 360) }
    private var elementLabelHeight: Int { Self.even(Double(elementLabelSize) * 1.6) }
    private var elementSlotHeight: Int { elementThumb + elementLabelHeight + 2 * elementBorder }
    /// Element slots down the right edge, keeping clear of the caption.
    private var maxElementSlots: Int { max(1, (size.height * 13 / 20 - margin) / (elementSlotHeight + margin)) }

    /// For each shot, the elements it shows (in request order, as many as there are slots).
    private func elementsShown() -> [[Int]] {
        plan.shots.indices.map { shot in
            Array(elements.indices.filter { elements[$0].shots.contains(shot) }.prefix(maxElementSlots))
        }
    }

    /// Each shown element scaled into a labelled thumbnail (`el<i>for<shot>`): an image once, split over its shots;
    /// a video per shot, trimmed to the shot's length.
    private func elementChains(inputs: [Int: [Int: Int]], shown: [[Int]]) -> [String] {
        let b = elementBorder, t = elementThumb, label = elementLabelHeight
        func thumbnail(_ index: Int) -> String {
            "scale=\(t):\(t):force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1,"
                + "format=yuv420p,pad=iw+\(2 * b):ih+\(label + 2 * b):\(b):\(b):color=0x101010,"
                + "drawtext=\(font):textfile=\(elements[index].labelFile):expansion=none:fontcolor=white"
                + ":fontsize=\(elementLabelSize):x=(w-text_w)/2:y=h-\(b + label)+(\(label)-text_h)/2"
        }
        var chains: [String] = []
        for index in elements.indices {
            guard let perShot = inputs[index], !perShot.isEmpty else { continue }
            let shots = perShot.keys.sorted()
            switch elements[index].source {
            case .image:
                let outputs = shots.map { "[el\(index)for\($0)]" }.joined()
                chains.append("[\(perShot[shots[0]]!):v]\(thumbnail(index)),split=\(shots.count)\(outputs)")
            case .video:
                for shot in shots {
                    chains.append(
                        "[\(perShot[shot]!):v]fps=\(Self.fps),\(thumbnail(index)),trim=end_frame=\(plan.shots[shot].frames),"
                            + "setpts=PTS-STARTPTS[el\(index)for\(shot)]")
                }
            }
        }
        return chains
    }

    // MARK: - Audio

    /// A quiet brown-noise bed under the whole video, a short swish at every cut, and each shot's lines one after
    /// another inside its window (a line that does not fit is cut at the window's end), mixed and cut to the exact
    /// sample count.
    private func audioChains(speechInputs: [(shot: Int, clip: SpeechSynthesizer.Clip, input: Int)]) -> [String] {
        let rate = Self.sampleRate
        let totalSamples = plan.totalFrames * rate / Self.fps
        let mono = "aformat=sample_fmts=fltp:sample_rates=\(rate):channel_layouts=mono"
        var chains = [
            "anoisesrc=color=brown:seed=\(audioSeed % 2_147_483_647):amplitude=0.05:sample_rate=\(rate),"
                + "atrim=end_sample=\(totalSamples),lowpass=f=500,volume=0.6,\(mono)[bed]"
        ]
        var mixInputs = ["[bed]"]
        let cuts = plan.shots.dropFirst().map { $0.startFrame * rate / Self.fps }
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
        for (number, (shot, clip, input)) in speechInputs.enumerated() {
            let window = plan.shots[shot]
            let windowStart = window.startFrame * rate / Self.fps
            let windowEnd = (window.startFrame + window.frames) * rate / Self.fps - rate / 10
            let start = cursor[shot] ?? windowStart + rate / 5
            let length = min(clip.samples, windowEnd - start)
            guard length > rate / 10 else { continue }
            cursor[shot] = start + length + rate / 4
            chains.append(
                "[\(input):a]aresample=\(rate),\(mono),atrim=end_sample=\(length),afade=t=out:st=\(Self.seconds(samples: length - rate / 50)):d=0.02,"
                    + "adelay=delays=\(start)S:all=1[speech\(number)]")
            mixInputs.append("[speech\(number)]")
        }
        chains.append(
            "\(mixInputs.joined())amix=inputs=\(mixInputs.count):duration=first:normalize=0,"
                + "aformat=sample_fmts=fltp:sample_rates=\(rate):channel_layouts=stereo,atrim=end_sample=\(totalSamples)[a]")
        return chains
    }

    // MARK: - Helpers

    static func seconds(_ frames: Int) -> String {
        String(format: "%.6f", Double(frames) / Double(fps))
    }

    static func seconds(samples: Int) -> String {
        String(format: "%.6f", Double(max(0, samples)) / Double(sampleRate))
    }

    /// Escapes a filter option value twice: for the option parser (backslash, colon, quote), then for the graph
    /// parser (backslash, comma, semicolon, brackets, quote).
    static func escape(_ value: String) -> String {
        func escaping(_ text: String, _ special: Set<Character>) -> String {
            String(text.flatMap { special.contains($0) ? ["\\", $0] : [$0] })
        }
        return escaping(escaping(value, ["\\", ":", "'"]), ["\\", ",", ";", "[", "]", "'"])
    }

    /// Rounds to the nearest even number, at least 2.
    static func even(_ value: Double) -> Int { max(2, Int((value / 2).rounded()) * 2) }
}
