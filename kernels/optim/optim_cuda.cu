/* placeholder: replaced by the CUDA twin */
