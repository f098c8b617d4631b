// swift-tools-version: 6.1
// The libFuzzer target for TPAT's ONNX loader, in its own package so that the main package's
// `swift build` and `swift test` never see it: it links only with `-sanitize=fuzzer` (its main
// hands over to libFuzzer's driver). Build and run it with scripts/fuzz-onnx.sh SECONDS.
import PackageDescription

let package = Package(
    name: "tpat-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "tpat", path: ".."),
    ],
    targets: [
        .target(name: "CLibFuzzer"),
        .executableTarget(
            name: "FuzzONNXLoader",
            dependencies: ["CLibFuzzer", .product(name: "TPATKit", package: "tpat")],
            swiftSettings: [.swiftLanguageMode(.v6), .unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
