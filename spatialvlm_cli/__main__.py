from spatialvlm_cli.cli.app import main

main()
