import Foundation
import KlingAPI

extension ComfyUIWorkflowTemplate {
    /// What a generation needs of a template: a first frame, a first and a last frame, or neither.
    static func need(of request: GenerationRequest) -> Capability {
        if request.lastFrameURL != nil { return .firstLastFrame }
        if request.firstFrameURL != nil { return .imageToVideo }
        return .textToVideo
    }

    /// The API-format graph for one generation: the template's graph with its inputs set. `images` are the names
    /// ComfyUI gave the uploaded first and last frames.
    func graph(for request: GenerationRequest, seed: Int, images: (first: String?, last: String?)) -> JSONValue {
        var nodes = workflow
        func set(_ input: Input, _ value: JSONValue) {
            guard let path = inputs[input], case .object(var node)? = nodes[path.node], case .object(var fields)? = node["inputs"] else { return }
            fields[path.name] = value
            node["inputs"] = .object(fields)
            nodes[path.node] = .object(node)
        }
        let size = OpenAICreateRequest.size(of: request).split(separator: "x").compactMap { Int($0) }
        set(.prompt, .string(request.prompt ?? ""))
        set(.negativePrompt, .string(request.negativePrompt ?? ""))
        if size.count == 2 {
            set(.width, .number(Double(size[0])))
            set(.height, .number(Double(size[1])))
        }
        set(.frames, .number(Double(frames.frames(seconds: request.duration, fps: frameRate))))
        set(.fps, .number(Double(frameRate)))
        set(.seed, .number(Double(seed)))
        if let first = images.first { set(.firstFrame, .string(first)) }
        if let last = images.last { set(.lastFrame, .string(last)) }
        return .object(nodes)
    }
}
