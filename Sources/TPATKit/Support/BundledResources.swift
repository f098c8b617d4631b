import Foundation

/// Files that ship inside TPATKit's resource bundle (op tables, plugin templates).
public enum BundledResources {
    /// The URL of `relativePath` inside the bundle's `Resources` folder.
    public static func url(_ relativePath: String) throws(TPATError) -> URL {
        // Foundation on Linux and on Darwin disagree on whether resourceURL already ends in
        // Resources/; look in both places.
        let bundle = Bundle.module
        let candidates = [
            bundle.bundleURL.appendingPathComponent("Resources").appendingPathComponent(relativePath),
            bundle.resourceURL?.appendingPathComponent(relativePath),
            bundle.resourceURL?.appendingPathComponent("Resources").appendingPathComponent(relativePath),
        ].compactMap { $0 }
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate.path) {
            return candidate
        }
        throw .installation("TPAT's resource '\(relativePath)' is missing from \(bundle.bundleURL.path); rebuild TPAT (make build)")
    }
}
