{
  description = "Lantern: development shell (Node 24, nats-server, PostgreSQL, Chromium, bubblewrap)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.nodejs_24
            pkgs.nats-server
            pkgs.postgresql_16
          ]
          # Chromium (cockpit tests) and bubblewrap (local sandbox backend) exist for Linux only.
          ++ pkgs.lib.optionals pkgs.stdenv.isLinux [
            pkgs.chromium
            pkgs.bubblewrap
          ];

          NATS_SERVER_BIN = "${pkgs.nats-server}/bin/nats-server";

          shellHook = ''
            # The `node` npm package (docs/adr/0001) ships a generic Linux binary that NixOS cannot run
            # without nix-ld; when it does not run, point it at this shell's Node 24 instead.
            if [ -e node_modules/node/bin/node ] && ! node_modules/node/bin/node -v >/dev/null 2>&1; then
              ln -sf ${pkgs.nodejs_24}/bin/node node_modules/node/bin/node
            fi
            echo "Lantern dev shell: node $(node -v), $(nats-server --version), $(postgres --version)"
            echo "  npm ci && npm run dev    # start Lantern locally (embedded NATS, PGlite under .lantern/)"
            echo "  npm test                 # type check and run the test suite"
            echo "  (after npm ci on NixOS, re-enter the shell so node_modules uses this Node 24)"
          '';
        };
      });
    };
}
