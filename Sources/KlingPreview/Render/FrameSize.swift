import KlingAPI

/// Output frame size rules: a size class per mode, shaped by the aspect ratio or the first frame's aspect.
struct FrameSize: Sendable, Hashable {
    var width: Int
    var height: Int

    /// (long side, short side) of each mode's class.
    static func sides(_ mode: GenerationRequest.Mode) -> (long: Int, short: Int) {
        switch mode {
        case .std: (1280, 720)
        case .pro: (1920, 1080)
        case .fourK: (3840, 2160)
        }
    }

    /// The size for a requested aspect ratio (nil means 1:1).
    static func forAspect(_ aspect: GenerationRequest.AspectRatio?, mode: GenerationRequest.Mode) -> FrameSize {
        let (long, short) = sides(mode)
        switch aspect ?? .square {
        case .landscape: return FrameSize(width: long, height: short)
        case .portrait: return FrameSize(width: short, height: long)
        case .square: return FrameSize(width: short, height: short)
        }
    }

    /// The same class of size at an image's aspect: the class's long side on the image's long side, even dimensions.
    static func forImage(width: Int, height: Int, mode: GenerationRequest.Mode) -> FrameSize {
        let (long, short) = sides(mode)
        guard width > 0, height > 0 else { return FrameSize(width: short, height: short) }
        if width == height { return FrameSize(width: short, height: short) }
        func even(_ value: Double) -> Int { max(2, Int((value / 2).rounded()) * 2) }
        if width > height {
            return FrameSize(width: long, height: even(Double(long) * Double(height) / Double(width)))
        }
        return FrameSize(width: even(Double(long) * Double(width) / Double(height)), height: long)
    }
}
