import Foundation
import KlingAPI
import KlingCore

/// What the engines for models that make one shot at a time (`openai-videos`, `comfyui`) share: a task is generated as
/// itself, or as one single-shot request per shot, and its finished result link lists one video link per generation.
enum OneShotGenerations {
    /// The requests a task is generated as: itself, or one single-shot request per shot (its prompt and duration;
    /// the first frame on shot 1).
    static func of(_ request: GenerationRequest) -> [GenerationRequest] {
        guard request.multiShot else { return [request] }
        return request.shots.enumerated().map { index, shot in
            var one = request
            one.multiShot = false
            one.shotType = nil
            one.shots = []
            one.prompt = shot.prompt
            one.duration = shot.duration
            one.imageURLs = index == 0 ? Array(request.imageURLs.prefix(1)) : []
            return one
        }
    }

    /// The video links of a result link `SCHEME LINK LINK ...`, one per generation of `request`, with the scratch
    /// folder made for the downloads; a link list that does not match the generations fails the render.
    static func links(of url: String, scheme: String, request: GenerationRequest, engine: String, scratch: URL) throws
        -> (links: [String], generations: [GenerationRequest])
    {
        let links = url.dropFirst(scheme.count).split(separator: " ").map(String.init)
        let generations = of(request)
        guard !links.isEmpty, links.count == generations.count else {
            throw EngineError.renderFailed("\(engine): \(links.count) videos for \(generations.count) shots")
        }
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        return (links, generations)
    }
}
