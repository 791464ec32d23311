import Foundation
import KlingAPI
import Logging

extension ComfyUIProvider {
    /// At start: every template's node classes must be in the `/object_info` of each instance that answers (one
    /// that does not is skipped until it answers). A template that could not run stops the server, naming the file,
    /// the instance and the missing classes.
    func checkNodeClasses(logger: Logger) async throws(RoutingError) {
        for instance in instances {
            let answer: UpstreamHTTP.Answer
            do {
                answer = try await instance.send(.GET, "/object_info", headers: [])
            } catch {
                logger.warning("ComfyUI instance did not answer at start; its workflows are checked when it does", metadata: ["instance": "\(instance.baseURL)"])
                continue
            }
            guard (200..<300).contains(answer.status), case .object(let classes)? = answer.json else {
                logger.warning("ComfyUI instance answered /object_info with \(answer.status)", metadata: ["instance": "\(instance.baseURL)"])
                continue
            }
            for template in templates {
                let missing = template.missingNodeClasses(known: Set(classes.keys))
                if !missing.isEmpty {
                    throw RoutingError(
                        "KLING_COMFYUI_WORKFLOWS: \(template.file): workflow: \(instance.baseURL) has no node \(missing.joined(separator: ", ")) "
                            + "(install the custom nodes, or fix the template)")
                }
            }
        }
    }
}
